// MshvIrqFdRoute: an IrqFdRoute of an MSHV partition, with the resample event of level MSIs.
#pragma once

#include "virt/kernel_irqfd_route.h"

namespace virt::mshv {

// Every route an MSHV partition's IrqFd hands out is one of these (dynamic_cast the
// IrqFdRoute): the shared KernelIrqFdRoute, with resample on. A route whose MSI is
// level-triggered (data bit 15) is registered with MSHV_IRQFD's RESAMPLE flag: the kernel then
// signals resample_event() when the guest ends the interrupt (EOI), and a device whose line is
// still asserted signals event() again. Edge MSIs are registered without it.
using MshvIrqFdRoute = KernelIrqFdRoute;

}  // namespace virt::mshv
