// PartitionStateControl: the optional capability of saving and restoring partition-wide state
// (Partition::state()).
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "virt/irqfd_route.h"
#include "virt/partition_state.h"
#include "virt/result.h"

namespace virt {

// Saves and restores the clock, the in-kernel interrupt controllers and PIT, and the irqfd
// route table. Restore into a fresh partition of the same backend and configuration, before its
// vCPUs run (guest memory is the VMM's to copy). Thread-safe.
class PartitionStateControl {
 public:
  virtual ~PartitionStateControl() = default;

  // The parts this partition saves and restores (depends on its configuration: no PIT part
  // without PartitionConfig::pit), in kPartitionRestoreOrder.
  virtual std::span<const PartitionStatePart> supported_parts() const = 0;

  // Saves `parts` (all supported when empty); kUnavailable naming a part it does not have.
  virtual Result<PartitionState> SaveState(std::span<const PartitionStatePart> parts = {}) = 0;

  // Restores the parts present in kPartitionRestoreOrder, refusing another backend's state
  // (kInvalidArgument) or a part it cannot restore (kUnavailable) before changing anything. The
  // routes part recreates each route with its GSI and MSI in one batch and returns the new
  // routes in the saved order, for the VMM to hand to its devices (their events are new);
  // without it the result is empty. A failure names the part; routes recreated before it are
  // dropped again.
  virtual Result<std::vector<std::unique_ptr<IrqFdRoute>>> RestoreState(
      const PartitionState& state) = 0;
};

}  // namespace virt
