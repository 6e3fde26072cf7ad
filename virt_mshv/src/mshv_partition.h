// MshvPartition: an MSHV partition fd with validated guest memory, vCPU creation, MSIs, state
// and dirty log.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "mshv_cpuid_intercepts.h"
#include "mshv_dirty_log.h"
#include "mshv_fd.h"
#include "mshv_partition_cpuid.h"
#include "mshv_partition_state.h"
#include "virt/guest_memory_map.h"
#include "virt/kernel_doorbells.h"
#include "virt/kernel_irqfd.h"
#include "virt/partition.h"

namespace virt::mshv {

class MshvPartition final : public Partition {
 public:
  // Takes ownership of `partition` (created and initialised by MshvHypervisor). With
  // config.irqchip the partition has a LAPIC, MSIs and an IrqFd.
  static Result<std::unique_ptr<Partition>> Create(std::shared_ptr<MshvIoctl> ioctl,
                                                   MshvFd partition,
                                                   const PartitionConfig& config);
  // Marks the irqfd and doorbell state dead (routes and doorbells fail with kPartitionGone from
  // now on) and closes the partition fd, which releases every irqfd, ioeventfd and mapping in
  // the kernel at once.
  ~MshvPartition() override;

  // MSHV_SET_GUEST_MEMORY {size, guest_pfn, userspace_addr, WRITABLE|EXECUTABLE (EXECUTABLE
  // only for kReadOnly)}. kInvalidArgument when unaligned/empty/wrapping, kOverlap when it
  // overlaps a mapped region. kDirtyLog changes no flag (MSHV tracks the whole partition once
  // dirty_log()->Enable() is called); it makes the region readable through dirty_log().
  Status MapMemory(const MemoryRegion& region) override;
  // MSHV_SET_GUEST_MEMORY {the mapping's size, guest_pfn, userspace_addr, flags UNMAP}.
  Status UnmapMemory(uint64_t guest_address, uint64_t size) override;
  // MSHV_CREATE_VP. kInvalidArgument past vcpu_count, kFailedPrecondition when created already.
  // No register or CPUID call: the hypervisor gives each VP its own APIC ID, and with the LAPIC
  // it creates every VP but 0 in StartupSuspend, so an AP's Run waits in MSHV_RUN_VP until the
  // BSP's INIT/SIPI (performed by the hypervisor's LAPIC) starts it at the SIPI vector.
  Result<std::unique_ptr<Vcpu>> CreateVcpu(uint32_t index) override;
  // HVCALL_ASSERT_VIRTUAL_INTERRUPT with the decoded MSI. true once the hypervisor accepted it
  // (MSHV does not report a blocked interrupt). kFailedPrecondition without an irqchip.
  Result<bool> RequestMsi(const MsiMessage& msi) override;
  IrqFd* irqfd() override;
  // Reads CPUID through an existing vCPU (see MshvPartitionCpuid); never nullptr.
  PartitionCpuid* cpuid() override { return cpuid_.get(); }
  // Always nullptr: the Microsoft hypervisor emulates only the LAPIC (MSHV_PT_BIT_LAPIC). There
  // is no in-kernel IOAPIC or PIC, so there are no legacy lines to raise; a VMM that needs ISA
  // interrupts emulates the IOAPIC itself and injects MSIs (RequestMsi / irqfd()).
  IrqLines* irq_lines() override { return nullptr; }
  // MSHV_IOEVENTFD doorbells (MshvDoorbellOps); never nullptr (every mshv_root kernel has the
  // ioctl, with or without the LAPIC). MMIO only: the kernel answers port I/O with EOPNOTSUPP,
  // which Register reports as kUnavailable. supports_any_length() is true: len 0 becomes a
  // hypervisor doorbell with HV_DOORBELL_FLAG_TRIGGER_SIZE_ANY (what rust-vmm mshv-ioctls
  // sends for every registration without a data match).
  Doorbells* doorbells() override { return doorbells_.get(); }
  // MshvPartitionState: the reference time, and the routes with the LAPIC; never nullptr.
  PartitionStateControl* state() override { return state_.get(); }
  // MshvDirtyLog over the regions mapped with MemoryFlags::kDirtyLog; never nullptr.
  DirtyLog* dirty_log() override { return &dirty_log_; }

 private:
  // MSHV has no slot numbers and no fixed limit on mappings.
  static constexpr uint32_t kMaxMappings = UINT32_MAX;

  MshvPartition(std::shared_ptr<MshvIoctl> ioctl, MshvFd partition, const PartitionConfig& config);

  std::shared_ptr<MshvIoctl> ioctl_;
  MshvFd partition_;
  PartitionConfig config_;
  std::unique_ptr<KernelIrqFd> irqfd_;
  std::unique_ptr<KernelDoorbells> doorbells_;
  std::shared_ptr<MshvCpuidIntercepts> cpuid_intercepts_;  // shared with the vCPUs
  std::unique_ptr<MshvPartitionCpuid> cpuid_;

  std::mutex memory_mu_;
  GuestMemoryMap memory_;  // guarded by memory_mu_; held across reserve, ioctl and commit

  std::mutex vcpu_mu_;
  std::vector<bool> vcpu_created_;  // guarded by vcpu_mu_; a VP stays in the hypervisor once made

  MshvDirtyLog dirty_log_;                     // after memory_: its lookups take memory_mu_
  std::unique_ptr<MshvPartitionState> state_;  // made in Create, once irqfd_ exists
};

}  // namespace virt::mshv
