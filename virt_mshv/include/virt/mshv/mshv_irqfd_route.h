// MshvIrqFdRoute: an IrqFdRoute of an MSHV partition, with the resample event of level MSIs.
#pragma once

#include "virt/event.h"
#include "virt/irqfd_route.h"

namespace virt::mshv {

// Every route an MSHV partition's IrqFd hands out is one of these (dynamic_cast the
// IrqFdRoute). A route whose MSI is level-triggered (data bit 15) is registered with
// MSHV_IRQFD's RESAMPLE flag: the kernel then signals resample_event() when the guest ends
// the interrupt (EOI), and a device whose line is still asserted signals event() again. Edge
// MSIs are registered without it. Switching a live route between the two re-registers it
// (deassign, push, assign), so the switch is never visible half-done.
class MshvIrqFdRoute : public IrqFdRoute {
 public:
  // The resample event, created the first time the route gets a level-triggered MSI; nullptr
  // before. Owned by the route and stable from then on.
  virtual const Event* resample_event() const = 0;
};

}  // namespace virt::mshv
