// WhpPartitionState: the partition's reference time and the irqfd routes as PartitionState.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "virt/irqfd.h"
#include "virt/partition_state_control.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

class WhpPartitionHandle;

// The partition-wide parts of a WHP snapshot:
//   kClock   WHvPartitionPropertyCodeReferenceTime (100 ns units; ClockState::ns is that times
//            100, flags 0), read with WHvGetPartitionProperty. Restore writes it while the time
//            is suspended: WHvSuspendPartitionTime, WHvSetPartitionProperty(ReferenceTime,
//            ns / 100), WHvResumePartitionTime (resumed also when the write fails), so the
//            reference time and the TSCs go on together from the restored value;
//   kRoutes  with irqchip (the partition has an IrqFd, trigger-backed or the user-mode
//            dispatcher): IrqFd::Routes / RestoreRoutes. GSIs are library-side numbers on
//            both, so restored routes take their saved GSIs in any partition.
// kIrqchip and kPit are kUnavailable: WHP emulates the local APIC only, no PIC, IOAPIC or PIT.
class WhpPartitionState final : public PartitionStateControl {
 public:
  // `irqfd`: the partition's (null without irqchip). Both outlive this.
  WhpPartitionState(WhpPartitionHandle& partition, IrqFd* irqfd);

  std::span<const PartitionStatePart> supported_parts() const override { return parts_; }
  Result<PartitionState> SaveState(std::span<const PartitionStatePart> parts = {}) override;
  Result<std::vector<std::unique_ptr<IrqFdRoute>>> RestoreState(
      const PartitionState& state) override;

 private:
  bool Supports(PartitionStatePart part) const;
  std::string Missing(PartitionStatePart part) const;
  Status SaveClock(PartitionState& into);
  Status LoadClock(const ClockState& clock);

  WhpPartitionHandle& partition_;
  IrqFd* irqfd_;
  std::vector<PartitionStatePart> parts_;
};

}  // namespace virt::whp
