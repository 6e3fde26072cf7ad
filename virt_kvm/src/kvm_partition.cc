// KvmPartition: memory slots, vCPU creation and KVM_SIGNAL_MSI.
#include "kvm_partition.h"

#include <string>
#include <utility>

#include "kvm_doorbells.h"
#include "kvm_irqfd.h"
#include "kvm_vcpu.h"

namespace virt::kvm {
Result<std::unique_ptr<Partition>> KvmPartition::Create(std::shared_ptr<KvmIoctl> ioctl, KvmFd vm,
                                                        const PartitionConfig& config,
                                                        const KvmHostCaps& caps,
                                                        const Cpuid& cpuid,
                                                        const KvmVcpuConfig& vcpus) {
  std::unique_ptr<KvmPartition> p(
      new KvmPartition(ioctl, std::move(vm), config, caps, cpuid, vcpus));
  if (config.irqchip) {
    auto irqfd = CreateKvmIrqFd(ioctl, p->vm_.get(), caps.max_irq_routes);
    if (!irqfd) return irqfd.error();
    p->irqfd_ = std::move(*irqfd);
    p->irq_lines_ = std::make_unique<KvmIrqLines>(ioctl, p->vm_.get(), caps.irqfd_resample);
    p->state_ = KvmPartitionState(ioctl, p->vm_.get(), p->irqfd_.get(), config.pit);
  }
  if (caps.ioeventfd) {
    p->doorbells_ = KernelDoorbells::Create(std::make_unique<KvmDoorbellOps>(ioctl, p->vm_.get()),
                                            {.any_length = caps.ioeventfd_any_length});
  }
  return std::unique_ptr<Partition>(std::move(p));
}

KvmPartition::KvmPartition(std::shared_ptr<KvmIoctl> ioctl, KvmFd vm,
                           const PartitionConfig& config, const KvmHostCaps& caps,
                           const Cpuid& cpuid, const KvmVcpuConfig& vcpus)
    : ioctl_(std::move(ioctl)),
      vm_(std::move(vm)),
      config_(config),
      caps_(caps),
      cpuid_(cpuid),
      vcpu_config_(vcpus),
      memory_(static_cast<uint32_t>(caps.max_memslots), "KvmPartition::MapMemory",
              "KvmPartition::UnmapMemory"),
      vcpu_created_(config.vcpu_count, false),
      dirty_log_(ioctl_, vm_.get(), caps.manual_dirty_log,
                 [this](uint64_t address, uint64_t size) {
                   std::lock_guard lock(memory_mu_);
                   return memory_.FindContaining(address, size, "DirtyLog::ReadAndClear");
                 }),
      state_(ioctl_, vm_.get(), nullptr, false) {}

KvmPartition::~KvmPartition() {
  // Closing the VM fd drops every irqfd in one go; deassigning them one by one would cost a
  // grace period (~54 us) each. Routes still alive see kPartitionGone from here on.
  if (irqfd_) irqfd_->Shutdown();
  if (irq_lines_) irq_lines_->Shutdown();
  if (doorbells_) doorbells_->Shutdown();
}

Status KvmPartition::MapMemory(const MemoryRegion& region) {
  std::lock_guard lock(memory_mu_);
  auto mapping = memory_.ReserveMap(region);
  if (!mapping) return mapping.error();
  kvm_userspace_memory_region r{};
  r.slot = mapping->slot;
  r.flags = (HasFlag(region.flags, MemoryFlags::kReadOnly) ? KVM_MEM_READONLY : 0u) |
            (HasFlag(region.flags, MemoryFlags::kDirtyLog) ? KVM_MEM_LOG_DIRTY_PAGES : 0u);
  r.guest_phys_addr = mapping->guest_address;
  r.memory_size = mapping->size;
  r.userspace_addr = mapping->host_address;
  if (Status s = ioctl_->SetUserMemoryRegion(vm_.get(), r); !s) return s;
  memory_.CommitMap(*mapping);
  dirty_log_.Forget(mapping->slot);  // a reused slot starts with a clean log
  return Ok();
}

Status KvmPartition::UnmapMemory(uint64_t guest_address, uint64_t size) {
  std::lock_guard lock(memory_mu_);
  auto mapping = memory_.FindExact(guest_address, size);
  if (!mapping) return mapping.error();
  kvm_userspace_memory_region r{};
  r.slot = mapping->slot;
  r.guest_phys_addr = guest_address;
  r.memory_size = 0;  // deletes the slot
  if (Status s = ioctl_->SetUserMemoryRegion(vm_.get(), r); !s) return s;
  memory_.CommitUnmap(*mapping);
  dirty_log_.Forget(mapping->slot);
  return Ok();
}

Result<std::unique_ptr<Vcpu>> KvmPartition::CreateVcpu(uint32_t index) {
  std::lock_guard lock(vcpu_mu_);
  if (index >= config_.vcpu_count) {
    return Error::Make(ErrorCode::kInvalidArgument, "KvmPartition::CreateVcpu",
                       "index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(config_.vcpu_count));
  }
  if (vcpu_created_[index]) {
    return Error::Make(ErrorCode::kFailedPrecondition, "KvmPartition::CreateVcpu",
                       "vCPU " + std::to_string(index) + " already created");
  }
  Cpuid cpuid = cpuid_;
  cpuid.SetApicId(index);
  auto vcpu = KvmVcpu::Create(ioctl_, vm_.get(), index, vcpu_config_, cpuid);
  if (!vcpu) return vcpu.error();
  vcpu_created_[index] = true;
  return std::unique_ptr<Vcpu>(std::move(*vcpu));
}

namespace {

// RequestMsi's failures, out of line and cold: the error's copy stays off the injection path.
[[gnu::cold, gnu::noinline]] Result<bool> MsiRefused(const MsiMessage& msi) {
  return msi.Decode().error();  // the error names the fault
}
[[gnu::cold, gnu::noinline]] Result<bool> SignalFailed(Result<int>&& failed) {
  return std::move(failed).error();
}

}  // namespace

Result<bool> KvmPartition::RequestMsi(const MsiMessage& msi) {
  if (!msi.IsValid()) [[unlikely]] return MsiRefused(msi);
  kvm_msi m{};
  m.address_lo = msi.address_lo();
  m.address_hi = msi.address_hi();
  m.data = msi.data;
  auto delivered = ioctl_->SignalMsi(vm_.get(), m);
  if (!delivered) [[unlikely]] return SignalFailed(std::move(delivered));
  return *delivered > 0;
}

IrqFd* KvmPartition::irqfd() { return irqfd_.get(); }

IrqLines* KvmPartition::irq_lines() { return irq_lines_.get(); }

Result<Cpuid> KvmPartition::DefaultCpuid(uint32_t index) {
  if (index >= config_.vcpu_count) {
    return Error::Make(ErrorCode::kInvalidArgument, "KvmPartition::DefaultCpuid",
                       "index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(config_.vcpu_count));
  }
  Cpuid cpuid = cpuid_;
  cpuid.SetApicId(index);
  return cpuid;
}

}  // namespace virt::kvm
