// KvmPartitionState: KVM_GET/SET_CLOCK, _IRQCHIP, _PIT2 and the route table as PartitionState.
#pragma once

#include <memory>
#include <vector>

#include "virt/irqfd.h"
#include "virt/kvm/kvm_ioctl.h"
#include "virt/partition_state_control.h"

namespace virt::kvm {

// The partition-wide parts of a KVM snapshot: the clock (KVM_GET_CLOCK: ns and flags;
// KVM_SET_CLOCK sets ns), with an irqchip the PIC master, PIC slave and IOAPIC (three
// KVM_GET_IRQCHIP, 3 x 520 bytes in chip order) and the route table (IrqFd::Routes /
// RestoreRoutes), with a PIT the kvm_pit_state2 (KVM_GET/SET_PIT2, 112 bytes). Holds the VM
// fd bare: the partition owns it and outlives this object.
class KvmPartitionState final : public PartitionStateControl {
 public:
  KvmPartitionState(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, IrqFd* irqfd, bool pit);

  std::span<const PartitionStatePart> supported_parts() const override { return parts_; }
  Result<PartitionState> SaveState(std::span<const PartitionStatePart> parts = {}) override;
  Result<std::vector<std::unique_ptr<IrqFdRoute>>> RestoreState(
      const PartitionState& state) override;

 private:
  bool Supports(PartitionStatePart part) const;
  Status Save(PartitionStatePart part, PartitionState& into);
  Status Load(PartitionStatePart part, const PartitionState& from);

  std::shared_ptr<KvmIoctl> ioctl_;
  int vm_fd_;
  IrqFd* irqfd_;  // the partition's, or null without an irqchip
  std::vector<PartitionStatePart> parts_;
};

}  // namespace virt::kvm
