// WhpPartition: a WHP partition with validated GPA mappings, vCPUs, MSI injection and IrqFd.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "virt/guest_memory_map.h"
#include "virt/kernel_doorbells.h"
#include "virt/partition.h"
#include "virt/user_mode_irqfd.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_dirty_log.h"
#include "whp_partition_state.h"

namespace virt::whp {

class WhpCpuidPolicy;
class WhpTriggerIrqFd;

// Owns a WHP partition handle and the set of vCPU indices in use. Shared by the partition and
// its vCPUs: WHvDeletePartition runs when the last of them is gone, so a vCPU that outlives its
// Partition object still holds a valid handle (as a KVM vCPU fd keeps its VM alive).
class WhpPartitionHandle {
 public:
  WhpPartitionHandle(std::shared_ptr<WhpApi> api, WHV_PARTITION_HANDLE handle,
                     uint32_t vcpu_count);
  // WHvDeletePartition; a failure is written to stderr (nothing else can be done with it).
  ~WhpPartitionHandle();
  WhpPartitionHandle(const WhpPartitionHandle&) = delete;
  WhpPartitionHandle& operator=(const WhpPartitionHandle&) = delete;

  WhpApi& api() const { return *api_; }
  const std::shared_ptr<WhpApi>& shared_api() const { return api_; }
  WHV_PARTITION_HANDLE get() const { return handle_; }

  // Claims vCPU `index`: kInvalidArgument when out of range, kFailedPrecondition when in use.
  Status ClaimVcpu(uint32_t index);
  void ReleaseVcpu(uint32_t index);

 private:
  std::shared_ptr<WhpApi> api_;
  WHV_PARTITION_HANDLE handle_;
  std::mutex mu_;
  std::vector<bool> vcpus_;  // guarded by mu_
};

class WhpPartition final : public Partition {
 public:
  // See WhpHypervisor::CreatePartition.
  static Result<std::unique_ptr<Partition>> Create(std::shared_ptr<WhpApi> api,
                                                   const WhpHostCaps& caps,
                                                   const WhpOptions& options,
                                                   const PartitionConfig& config);
  // Shuts the doorbells and the irqfd down (registrations and routes fail with kPartitionGone
  // from now on), then drops this object's share of the handle: WHvDeletePartition follows once
  // no vCPU holds it either (and unregisters the doorbells still registered).
  ~WhpPartition() override;

  // WHvMapGpaRange with Read|Write|Execute (Read|Execute for kReadOnly; TrackDirtyPages for
  // kDirtyLog). Validation as GuestMemoryMap (page alignment, overlap).
  Status MapMemory(const MemoryRegion& region) override;
  // WHvUnmapGpaRange of a region mapped at exactly that range.
  Status UnmapMemory(uint64_t guest_address, uint64_t size) override;
  // WhpVcpu::Create: WHvCreateVirtualProcessor(index, 0), and with irqchip an application
  // processor (index > 0) parked in StartupSuspend until the boot processor's INIT/SIPI.
  // kInvalidArgument for index >= vcpu_count, kFailedPrecondition while a vCPU with that index
  // exists.
  Result<std::unique_ptr<Vcpu>> CreateVcpu(uint32_t index) override;
  // MsiToInterruptControl + WHvRequestInterrupt. kFailedPrecondition without irqchip (no LAPIC
  // emulation). Always true when delivered: WHP does not report a blocked interrupt.
  Result<bool> RequestMsi(const MsiMessage& msi) override;
  // Trigger-backed routes when the host has triggers (and WhpOptions::use_triggers), else the
  // user-mode dispatcher; null without irqchip.
  IrqFd* irqfd() override;
  // WhpCpuidPolicy; nullptr when the host has no WHvGetVirtualProcessorCpuidOutput (before
  // Windows 10 20H2), so what a VP presents cannot be read.
  PartitionCpuid* cpuid() override;
  // WhpPartitionState (issue 12): the reference time, and the irqfd's routes (trigger-backed
  // or user-mode) with irqchip; never nullptr.
  PartitionStateControl* state() override { return state_.get(); }
  // WhpDirtyLog over the regions mapped with MemoryFlags::kDirtyLog; nullptr when the host has
  // no dirty-page tracking (WHvCapabilityCodeFeatures.DirtyPageTracking).
  DirtyLog* dirty_log() override { return dirty_log_ ? &*dirty_log_ : nullptr; }
  // Issue 11: WHP doorbells (WhpDoorbellOps under KernelDoorbells: MMIO only, port I/O is
  // kUnavailable; any length); nullptr when WinHvPlatform.dll has no doorbell functions
  // (before Windows 10 2004). UserModeDoorbells covers ports and older hosts.
  Doorbells* doorbells() override { return doorbells_.get(); }
  // irq_lines() stays nullptr: WHP emulates the local APIC only, no IOAPIC or PIC (a VMM models
  // those itself and injects with RequestMsi / IrqFd; level EOIs arrive as X64ApicEoi exits).

 private:
  WhpPartition(std::shared_ptr<WhpPartitionHandle> handle, const PartitionConfig& config,
               std::shared_ptr<WhpCpuidPolicy> cpuid);

  std::shared_ptr<WhpPartitionHandle> handle_;
  PartitionConfig config_;
  std::shared_ptr<WhpCpuidPolicy> cpuid_;  // shared with the vCPUs
  std::unique_ptr<WhpTriggerIrqFd> trigger_irqfd_;
  std::unique_ptr<UserModeIrqFd> user_mode_irqfd_;
  std::unique_ptr<KernelDoorbells> doorbells_;  // issue 11

  std::mutex memory_mu_;
  GuestMemoryMap memory_;  // guarded by memory_mu_; held across reserve, WHv call and commit
  std::optional<WhpDirtyLog> dirty_log_;           // after memory_: its lookups take memory_mu_
  std::unique_ptr<WhpPartitionState> state_;       // made in Create, once the irqfd exists
};

}  // namespace virt::whp
