// IrqFdRoute: one event -> MSI route owned by the device that signals it.
#pragma once

#include <optional>

#include "virt/event.h"
#include "virt/gsi_table.h"
#include "virt/msi_message.h"
#include "virt/result.h"

namespace virt {

// An interrupt route: signalling event() injects the route's current MSI into the guest without
// a trip through the VMM (kernel irqfd where the backend has one). A new route is masked (no
// MSI). Thread-safe: any thread may use any route; routes of one IrqFd serialise on it.
//
// Destroying the route tears it down in the only safe order: detach the event from the
// hypervisor, remove the routing entry, push the table, free the GSI. Failures there go to the
// IrqFd's error handler; call Release() first to get them as a value instead. After the
// partition is gone every call fails with kPartitionGone and destruction just closes the event.
class IrqFdRoute {
 public:
  virtual ~IrqFdRoute() = default;

  virtual Gsi gsi() const = 0;

  // The event devices signal. The same handle for the route's whole life.
  virtual const Event& event() const = 0;

  // Enables or retargets the route. The MSI is validated (0xFEExxxxx) first; on any error the
  // route and the tables are left as they were. Inside a batch the change takes effect when the
  // batch commits.
  virtual Status SetMsi(const MsiMessage& msi) = 0;

  // Masks the route. Signals that arrive while masked stay pending on the event and are
  // delivered after the next SetMsi; none are delivered before it.
  virtual Status ClearMsi() = 0;

  // The MSI the route delivers now (nullopt when masked).
  virtual std::optional<MsiMessage> msi() const = 0;

  // Tears the route down now and returns the outcome. A second call fails with
  // kAlreadyReleased; every other call on a released route fails the same way.
  virtual Status Release() = 0;
};

}  // namespace virt
