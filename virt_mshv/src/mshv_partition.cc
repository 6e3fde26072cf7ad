// MshvPartition: guest memory mappings, vCPU creation, HVCALL_ASSERT_VIRTUAL_INTERRUPT, and the
// state and dirty-log capabilities.
#include "mshv_partition.h"

#include <string>
#include <utility>

#include "mshv_doorbells.h"
#include "mshv_hvcall.h"
#include "mshv_irqfd.h"
#include "mshv_vcpu.h"

namespace virt::mshv {
Result<std::unique_ptr<Partition>> MshvPartition::Create(std::shared_ptr<MshvIoctl> ioctl,
                                                         MshvFd partition,
                                                         const PartitionConfig& config) {
  std::unique_ptr<MshvPartition> p(new MshvPartition(ioctl, std::move(partition), config));
  if (config.irqchip) {
    auto irqfd = CreateMshvIrqFd(ioctl, p->partition_.get());
    if (!irqfd) return irqfd.error();
    p->irqfd_ = std::move(*irqfd);
  }
  p->doorbells_ = KernelDoorbells::Create(
      std::make_unique<MshvDoorbellOps>(ioctl, p->partition_.get()), {.any_length = true});
  p->state_ = std::make_unique<MshvPartitionState>(ioctl, p->partition_.get(), p->irqfd_.get());
  return std::unique_ptr<Partition>(std::move(p));
}

MshvPartition::MshvPartition(std::shared_ptr<MshvIoctl> ioctl, MshvFd partition,
                             const PartitionConfig& config)
    : ioctl_(std::move(ioctl)),
      partition_(std::move(partition)),
      config_(config),
      cpuid_intercepts_(std::make_shared<MshvCpuidIntercepts>()),
      memory_(kMaxMappings, "MshvPartition::MapMemory", "MshvPartition::UnmapMemory"),
      vcpu_created_(config.vcpu_count, false),
      dirty_log_(ioctl_, partition_.get(), [this](uint64_t address, uint64_t size) {
        std::lock_guard lock(memory_mu_);
        return memory_.FindContaining(address, size, "DirtyLog::ReadAndClear");
      }) {
  cpuid_ = std::make_unique<MshvPartitionCpuid>(
      ioctl_, partition_.get(), config.vcpu_count, [this]() -> std::optional<uint32_t> {
        std::lock_guard lock(vcpu_mu_);
        for (uint32_t i = 0; i < vcpu_created_.size(); ++i) {
          if (vcpu_created_[i]) return i;
        }
        return std::nullopt;
      });
}

MshvPartition::~MshvPartition() {
  // Closing the partition fd drops every irqfd and ioeventfd in one go; deassigning them one by
  // one would cost an RCU grace period each. Routes and doorbells still alive see
  // kPartitionGone from here on.
  if (irqfd_) irqfd_->Shutdown();
  if (doorbells_) doorbells_->Shutdown();
}

Status MshvPartition::MapMemory(const MemoryRegion& region) {
  if (Status s = memory_.Validate(region); !s) return s;
  std::lock_guard lock(memory_mu_);
  auto mapping = memory_.ReserveMap(region);
  if (!mapping) return mapping.error();
  mshv_user_mem_region r{};
  r.size = mapping->size;
  r.guest_pfn = mapping->guest_address / kPageSize;
  r.userspace_addr = mapping->host_address;
  r.flags = static_cast<uint8_t>(1u << MSHV_SET_MEM_BIT_EXECUTABLE);
  if (!HasFlag(region.flags, MemoryFlags::kReadOnly)) r.flags |= 1u << MSHV_SET_MEM_BIT_WRITABLE;
  if (Status s = ioctl_->SetGuestMemory(partition_.get(), r); !s) return s;
  memory_.CommitMap(*mapping);
  return Ok();
}

Status MshvPartition::UnmapMemory(uint64_t guest_address, uint64_t size) {
  std::lock_guard lock(memory_mu_);
  auto mapping = memory_.FindExact(guest_address, size);
  if (!mapping) return mapping.error();
  mshv_user_mem_region r{};
  r.size = size;
  r.guest_pfn = guest_address / kPageSize;
  r.userspace_addr = mapping->host_address;
  r.flags = static_cast<uint8_t>(1u << MSHV_SET_MEM_BIT_UNMAP);
  if (Status s = ioctl_->SetGuestMemory(partition_.get(), r); !s) return s;
  memory_.CommitUnmap(*mapping);
  return Ok();
}

Result<std::unique_ptr<Vcpu>> MshvPartition::CreateVcpu(uint32_t index) {
  std::lock_guard lock(vcpu_mu_);
  if (index >= config_.vcpu_count) {
    return Error::Make(ErrorCode::kInvalidArgument, "MshvPartition::CreateVcpu",
                       "index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(config_.vcpu_count));
  }
  if (vcpu_created_[index]) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvPartition::CreateVcpu",
                       "vCPU " + std::to_string(index) + " already created");
  }
  auto vcpu = MshvVcpu::Create(ioctl_, partition_.get(), index, cpuid_intercepts_, config_.irqchip);
  if (!vcpu) return vcpu.error();
  vcpu_created_[index] = true;
  return std::unique_ptr<Vcpu>(std::move(*vcpu));
}

Result<bool> MshvPartition::RequestMsi(const MsiMessage& msi) {
  auto decoded = msi.Decode();
  if (!decoded) return decoded.error();
  if (!config_.irqchip) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvPartition::RequestMsi",
                       "the partition has no LAPIC (PartitionConfig::irqchip is false)");
  }
  if (Status s = AssertVirtualInterrupt(*ioctl_, partition_.get(), *decoded); !s) {
    return s.error();
  }
  return true;
}

IrqFd* MshvPartition::irqfd() { return irqfd_.get(); }

}  // namespace virt::mshv
