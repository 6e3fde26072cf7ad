// IrqLineRoute: an event bound to a legacy interrupt line (IOAPIC/PIC pin) of the in-kernel irqchip.
#pragma once

#include <cstdint>

#include "virt/event.h"
#include "virt/result.h"

namespace virt {

// How signals of a line route drive the pin.
enum class LineTrigger : uint8_t {
  // Each signal pulses the line (assert, then deassert): for edge-triggered pins.
  kEdge,
  // A signal asserts the line and it stays asserted until the guest ends the interrupt (EOI at
  // the IOAPIC/PIC); the kernel then deasserts it and signals resample_event(). A device whose
  // condition still holds signals event() again (KVM_IRQFD_FLAG_RESAMPLE). For level pins.
  kLevelResample,
};

// Signalling event() drives the line without a trip through the VMM (KVM_IRQFD on the pin's
// GSI). Thread-safe. Destroying the route detaches the events from the kernel (KVM_IRQFD
// DEASSIGN), then closes them; a failure there goes to the IrqLines error handler (stderr by
// default), and Release() returns it instead. After the partition is gone every call fails with
// kPartitionGone and destruction only closes the events.
class IrqLineRoute {
 public:
  virtual ~IrqLineRoute() = default;

  virtual uint32_t line() const = 0;
  virtual LineTrigger trigger() const = 0;

  // The event devices signal; the same handle for the route's whole life.
  virtual const Event& event() const = 0;
  // The event the kernel signals on EOI (kLevelResample only; nullptr for kEdge).
  virtual const Event* resample_event() const = 0;

  // Detaches and closes now. A second call fails with kAlreadyReleased.
  virtual Status Release() = 0;
};

}  // namespace virt
