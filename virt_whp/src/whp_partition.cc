// WhpPartition: partition setup (properties), GPA mapping, vCPUs, MSIs and the IrqFd choice.
#include "whp_partition.h"

#include <cstdio>
#include <string>
#include <utility>

#include "whp_cpuid.h"
#include "whp_cpuid_policy.h"
#include "whp_cpuid_probe.h"
#include "whp_doorbells.h"
#include "whp_interrupt.h"
#include "whp_irqfd.h"
#include "whp_vcpu.h"

namespace virt::whp {
namespace {

// WHP has no slot limit; the map only validates and detects overlaps.
constexpr uint32_t kMaxRegions = 1u << 16;

template <typename T>
Status SetProperty(WhpApi& api, WHV_PARTITION_HANDLE h, WHV_PARTITION_PROPERTY_CODE code,
                   const T& value) {
  return api.SetPartitionProperty(h, code, &value, static_cast<uint32_t>(sizeof value));
}

// Runs the property writes and WHvSetupPartition on a new partition.
Status Configure(WhpApi& api, WHV_PARTITION_HANDLE h, const PartitionConfig& config,
                 const WhpHostCaps& caps, const std::vector<WHV_X64_CPUID_RESULT>& cpuid) {
  const UINT32 count = config.vcpu_count;
  if (Status s = SetProperty(api, h, WHvPartitionPropertyCodeProcessorCount, count); !s) return s;
  const WHV_X64_LOCAL_APIC_EMULATION_MODE apic =
      config.irqchip ? WHvX64LocalApicEmulationModeXApic : WHvX64LocalApicEmulationModeNone;
  if (Status s = SetProperty(api, h, WHvPartitionPropertyCodeLocalApicEmulationMode, apic); !s) {
    return s;
  }
  WHV_EXTENDED_VM_EXITS exits{};
  exits.X64CpuidExit = 1;
  // The guest's INIT/SIPI reach its APs only through the VMM (WhpVcpu::Run re-issues them).
  exits.X64ApicInitSipiExitTrap = config.irqchip && caps.init_sipi_trap ? 1 : 0;
  if (Status s = SetProperty(api, h, WHvPartitionPropertyCodeExtendedVmExits, exits.AsUINT64);
      !s) {
    return s;
  }
  if (Status s = SetProperty(api, h, WHvPartitionPropertyCodeCpuidExitList, kInitialCpuidExits);
      !s) {
    return s;
  }
  if (!cpuid.empty()) {
    if (Status s = api.SetPartitionProperty(
            h, WHvPartitionPropertyCodeCpuidResultList, cpuid.data(),
            static_cast<uint32_t>(cpuid.size() * sizeof(WHV_X64_CPUID_RESULT)));
        !s) {
      return s;
    }
  }
  return api.SetupPartition(h);
}

// What a VP of the partition presents, read through a temporary VP 0 (no vCPU exists yet; the
// VMM's CreateVcpu(0) makes it afresh).
Result<Cpuid> ProbeSupportedCpuid(WhpApi& api, WHV_PARTITION_HANDLE h) {
  if (Status s = api.CreateVirtualProcessor(h, 0, 0); !s) return s.error();
  auto table = ProbeCpuid(api, h, 0);
  const Status deleted = api.DeleteVirtualProcessor(h, 0);
  if (!table) return table.error();
  if (!deleted) return deleted.error();
  return table;
}

CpuidEntry EntryOf(const WHV_X64_CPUID_RESULT& r) {
  return {.function = r.Function, .index = 0, .flags = 0,
          .eax = r.Eax, .ebx = r.Ebx, .ecx = r.Ecx, .edx = r.Edx};
}

}  // namespace

WhpPartitionHandle::WhpPartitionHandle(std::shared_ptr<WhpApi> api, WHV_PARTITION_HANDLE handle,
                                       uint32_t vcpu_count)
    : api_(std::move(api)), handle_(handle), vcpus_(vcpu_count, false) {}

WhpPartitionHandle::~WhpPartitionHandle() {
  if (Status s = api_->DeletePartition(handle_); !s) {
    std::fprintf(stderr, "virt/whp: %s\n", s.error().Message().c_str());
  }
}

Status WhpPartitionHandle::ClaimVcpu(uint32_t index) {
  std::lock_guard lock(mu_);
  if (index >= vcpus_.size()) {
    return Error::Make(ErrorCode::kInvalidArgument, "WhpPartition::CreateVcpu",
                       "vCPU index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(vcpus_.size()));
  }
  if (vcpus_[index]) {
    return Error::Make(ErrorCode::kFailedPrecondition, "WhpPartition::CreateVcpu",
                       "vCPU " + std::to_string(index) + " already exists");
  }
  vcpus_[index] = true;
  return Ok();
}

void WhpPartitionHandle::ReleaseVcpu(uint32_t index) {
  std::lock_guard lock(mu_);
  if (index < vcpus_.size()) vcpus_[index] = false;
}

Result<std::unique_ptr<Partition>> WhpPartition::Create(std::shared_ptr<WhpApi> api,
                                                        const WhpHostCaps& caps,
                                                        const WhpOptions& options,
                                                        const PartitionConfig& config) {
  constexpr const char* kOp = "WhpHypervisor::CreatePartition";
  if (config.vcpu_count == 0) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp, "vcpu_count is 0");
  }
  if (config.pit && !config.irqchip) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp, "pit needs irqchip");
  }
  if (config.pit) {
    return Error::Make(ErrorCode::kUnavailable, kOp,
                       "WHP has no in-kernel i8254 PIT (it emulates the local APIC only): "
                       "PartitionConfig::pit is not available");
  }
  if (config.irqchip && !caps.local_apic_emulation) {
    return Error::Make(ErrorCode::kUnavailable, kOp,
                       "irqchip needs WHP local APIC emulation, which this host lacks");
  }
  if (config.irqchip && config.vcpu_count > 1 && !caps.init_sipi_trap) {
    return Error::Make(ErrorCode::kUnavailable, kOp,
                       "SMP with irqchip needs WHV_EXTENDED_VM_EXITS.X64ApicInitSipiExitTrap "
                       "(the guest's INIT/SIPI reach APs only through it), which this host lacks");
  }
  std::vector<WHV_X64_CPUID_RESULT> result_list;
  const uint64_t tsc_hz = options.tsc_hz != 0 ? options.tsc_hz : caps.processor_clock_hz;
  if (tsc_hz != 0) result_list.push_back(TscFrequencyLeaf(tsc_hz));

  auto created = api->CreatePartition();
  if (!created) return created.error();
  // From here the handle object deletes the partition on every failure path.
  auto handle = std::make_shared<WhpPartitionHandle>(api, *created, config.vcpu_count);
  if (Status s = Configure(*api, *created, config, caps, result_list); !s) return s.error();
  std::optional<Cpuid> supported;
  if (caps.cpuid_output) {
    auto probed = ProbeSupportedCpuid(*api, *created);
    if (!probed) return probed.error();
    supported = std::move(*probed);
  }
  std::optional<CpuidEntry> tsc_leaf;
  if (!result_list.empty()) tsc_leaf = EntryOf(result_list.front());
  auto cpuid = std::make_shared<WhpCpuidPolicy>(handle, config.vcpu_count, std::move(supported),
                                                tsc_leaf);

  std::unique_ptr<WhpPartition> partition(new WhpPartition(handle, config, std::move(cpuid)));
  if (api->HasDoorbells()) {  // issue 11
    partition->doorbells_ = KernelDoorbells::Create(
        std::make_unique<WhpDoorbellOps>(api, *created), {.any_length = true});
  }
  if (config.irqchip) {
    if (caps.triggers && options.use_triggers) {
      auto irqfd = WhpTriggerIrqFd::Create(api, *created);
      if (!irqfd) return irqfd.error();
      partition->trigger_irqfd_ = std::move(*irqfd);
    } else {
      // Injects through the handle, not the partition object, so the dispatcher never touches
      // a partition being destroyed (the destructor shuts it down first anyway). Direct
      // signals: WHvRequestInterrupt may be called from any thread, so a device's Signal injects
      // on its own thread instead of waking the dispatcher.
      auto irqfd = UserModeIrqFd::Create(
          [handle](const MsiMessage& msi) -> Result<bool> {
            auto control = MsiToInterruptControl(msi);
            if (!control) return control.error();
            if (Status s = handle->api().RequestInterrupt(handle->get(), *control); !s) {
              return s.error();
            }
            return true;
          },
          UserModeIrqFd::Options{.direct_signals = true});
      if (!irqfd) return irqfd.error();
      partition->user_mode_irqfd_ = std::move(*irqfd);
    }
  }
  // Issue 12: state and dirty log.
  partition->state_ = std::make_unique<WhpPartitionState>(*handle, partition->irqfd());
  if (caps.dirty_page_tracking) {
    WhpPartition* p = partition.get();
    partition->dirty_log_.emplace(*handle, [p](uint64_t address, uint64_t size) {
      std::lock_guard lock(p->memory_mu_);
      return p->memory_.FindContaining(address, size, "DirtyLog::ReadAndClear");
    });
  }
  return std::unique_ptr<Partition>(std::move(partition));
}

WhpPartition::WhpPartition(std::shared_ptr<WhpPartitionHandle> handle,
                           const PartitionConfig& config, std::shared_ptr<WhpCpuidPolicy> cpuid)
    : handle_(std::move(handle)),
      config_(config),
      cpuid_(std::move(cpuid)),
      memory_(kMaxRegions, "WhpPartition::MapMemory", "WhpPartition::UnmapMemory") {}

WhpPartition::~WhpPartition() {
  if (doorbells_) doorbells_->Shutdown();
  if (trigger_irqfd_) trigger_irqfd_->Shutdown();
  if (user_mode_irqfd_) {
    if (Status s = user_mode_irqfd_->Shutdown(); !s) user_mode_irqfd_->ReportError(s.error());
  }
}

Status WhpPartition::MapMemory(const MemoryRegion& region) {
  std::lock_guard lock(memory_mu_);
  auto mapping = memory_.ReserveMap(region);
  if (!mapping) return mapping.error();
  uint32_t flags = WHvMapGpaRangeFlagRead | WHvMapGpaRangeFlagExecute;
  if (!HasFlag(region.flags, MemoryFlags::kReadOnly)) flags |= WHvMapGpaRangeFlagWrite;
  if (HasFlag(region.flags, MemoryFlags::kDirtyLog)) flags |= WHvMapGpaRangeFlagTrackDirtyPages;
  if (Status s = handle_->api().MapGpaRange(handle_->get(), region.host_address,
                                             region.guest_address, region.size,
                                             static_cast<WHV_MAP_GPA_RANGE_FLAGS>(flags));
      !s) {
    return s;
  }
  memory_.CommitMap(*mapping);
  return Ok();
}

Status WhpPartition::UnmapMemory(uint64_t guest_address, uint64_t size) {
  std::lock_guard lock(memory_mu_);
  auto mapping = memory_.FindExact(guest_address, size);
  if (!mapping) return mapping.error();
  if (Status s = handle_->api().UnmapGpaRange(handle_->get(), guest_address, size); !s) return s;
  memory_.CommitUnmap(*mapping);
  return Ok();
}

Result<std::unique_ptr<Vcpu>> WhpPartition::CreateVcpu(uint32_t index) {
  auto vcpu = WhpVcpu::Create(handle_, index, config_.vcpu_count, config_.irqchip, cpuid_);
  if (!vcpu) return vcpu.error();
  return std::unique_ptr<Vcpu>(std::move(*vcpu));
}

Result<bool> WhpPartition::RequestMsi(const MsiMessage& msi) {
  auto control = MsiToInterruptControl(msi);
  if (!control) return control.error();
  if (!config_.irqchip) {
    return Error::Make(ErrorCode::kFailedPrecondition, "WhpPartition::RequestMsi",
                       "the partition has no local APIC emulation (irqchip is off)");
  }
  if (Status s = handle_->api().RequestInterrupt(handle_->get(), *control); !s) return s.error();
  return true;
}

IrqFd* WhpPartition::irqfd() {
  if (trigger_irqfd_) return trigger_irqfd_.get();
  return user_mode_irqfd_.get();
}

PartitionCpuid* WhpPartition::cpuid() { return cpuid_->probed() ? cpuid_.get() : nullptr; }

}  // namespace virt::whp
