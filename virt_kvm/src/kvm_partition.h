// KvmPartition: a KVM VM fd with validated memory slots, vCPU creation and MSI injection.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "kvm_dirty_log.h"
#include "kvm_fd.h"
#include "kvm_irq_lines.h"
#include "kvm_partition_state.h"
#include "kvm_vcpu.h"
#include "virt/cpuid.h"
#include "virt/guest_memory_map.h"
#include "virt/kernel_doorbells.h"
#include "virt/kernel_irqfd.h"
#include "virt/kvm/kvm_hypervisor.h"
#include "virt/partition.h"

namespace virt::kvm {

class KvmPartition final : public Partition, public PartitionCpuid {
 public:
  // Takes ownership of `vm` (already set up by KvmHypervisor::CreatePartition).
  static Result<std::unique_ptr<Partition>> Create(std::shared_ptr<KvmIoctl> ioctl, KvmFd vm,
                                                   const PartitionConfig& config,
                                                   const KvmHostCaps& caps, const Cpuid& cpuid,
                                                   const KvmVcpuConfig& vcpus);
  // Marks the irqfd, line and doorbell state dead (routes fail with kPartitionGone from now on) and
  // closes the VM fd, which releases every irqfd and memslot in the kernel at once.
  ~KvmPartition() override;

  Status MapMemory(const MemoryRegion& region) override;
  Status UnmapMemory(uint64_t guest_address, uint64_t size) override;
  Result<std::unique_ptr<Vcpu>> CreateVcpu(uint32_t index) override;
  Result<bool> RequestMsi(const MsiMessage& msi) override;
  IrqFd* irqfd() override;
  PartitionCpuid* cpuid() override { return this; }
  // With config.irqchip: the 24 IOAPIC pins (KvmIrqLines); null without.
  IrqLines* irq_lines() override;
  // KVM_IOEVENTFD doorbells (KvmDoorbellOps); null without KVM_CAP_IOEVENTFD.
  Doorbells* doorbells() override { return doorbells_.get(); }
  // KvmPartitionState: clock, irqchip and routes (with an irqchip), PIT (with a PIT).
  PartitionStateControl* state() override { return &state_; }
  // KvmDirtyLog over the regions mapped with MemoryFlags::kDirtyLog.
  DirtyLog* dirty_log() override { return &dirty_log_; }

  // PartitionCpuid: what KVM_GET_SUPPORTED_CPUID said when the hypervisor was opened, and that
  // with SetApicId(index). No ioctl.
  Result<Cpuid> SupportedCpuid() override { return cpuid_; }
  Result<Cpuid> DefaultCpuid(uint32_t index) override;

 private:
  KvmPartition(std::shared_ptr<KvmIoctl> ioctl, KvmFd vm, const PartitionConfig& config,
               const KvmHostCaps& caps, const Cpuid& cpuid, const KvmVcpuConfig& vcpus);

  std::shared_ptr<KvmIoctl> ioctl_;
  KvmFd vm_;
  PartitionConfig config_;
  KvmHostCaps caps_;
  const Cpuid cpuid_;  // a copy: the partition may outlive its hypervisor
  std::unique_ptr<KernelIrqFd> irqfd_;
  std::unique_ptr<KvmIrqLines> irq_lines_;
  std::unique_ptr<KernelDoorbells> doorbells_;
  const KvmVcpuConfig vcpu_config_;

  std::mutex memory_mu_;
  GuestMemoryMap memory_;  // guarded by memory_mu_; held across reserve, ioctl and commit

  std::mutex vcpu_mu_;
  std::vector<bool> vcpu_created_;  // guarded by vcpu_mu_

  KvmDirtyLog dirty_log_;     // after memory_: its lookups take memory_mu_
  KvmPartitionState state_;   // set up once irqfd_ exists (see Create)
};

}  // namespace virt::kvm
