// MshvPartitionState: the partition's reference time and the irqfd routes as PartitionState.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "virt/irqfd.h"
#include "virt/mshv/mshv_ioctl.h"
#include "virt/partition_state_control.h"

namespace virt::mshv {

// The partition-wide parts of an MSHV snapshot:
//   kClock   HV_PARTITION_PROPERTY_REFERENCE_TIME (100 ns units; ClockState::ns is that times
//            100, flags 0). Restore writes it while the time is frozen:
//            HVCALL_SET_PARTITION_PROPERTY {TIME_FREEZE 1}, {REFERENCE_TIME ns / 100},
//            {TIME_FREEZE 0} (unfrozen again also when the write fails);
//   kRoutes  with the LAPIC (an IrqFd): IrqFd::Routes / RestoreRoutes.
// kIrqchip and kPit are kUnavailable: the Microsoft hypervisor emulates no PIC, IOAPIC or PIT.
// Holds the partition fd bare: the partition owns it and outlives this object.
class MshvPartitionState final : public PartitionStateControl {
 public:
  MshvPartitionState(std::shared_ptr<MshvIoctl> ioctl, int partition_fd, IrqFd* irqfd);

  std::span<const PartitionStatePart> supported_parts() const override { return parts_; }
  Result<PartitionState> SaveState(std::span<const PartitionStatePart> parts = {}) override;
  Result<std::vector<std::unique_ptr<IrqFdRoute>>> RestoreState(
      const PartitionState& state) override;

 private:
  bool Supports(PartitionStatePart part) const;
  Status SaveClock(PartitionState& into);
  Status LoadClock(const ClockState& clock);

  std::shared_ptr<MshvIoctl> ioctl_;
  int partition_fd_;
  IrqFd* irqfd_;  // the partition's, or null without the LAPIC
  std::vector<PartitionStatePart> parts_;
};

}  // namespace virt::mshv
