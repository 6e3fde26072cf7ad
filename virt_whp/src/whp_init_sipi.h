// InitSipiControls: the WHvRequestInterrupt calls that carry out a guest's trapped INIT/SIPI.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "virt/whp/whp_types.h"

namespace virt::whp {

// With WHV_EXTENDED_VM_EXITS.X64ApicInitSipiExitTrap, a guest's ICR write of an INIT or a SIPI
// does not reach its targets: WHP stops the sender with WHvRunVpExitReasonX64ApicInitSipiTrap
// (the write itself has completed, RIP is past it) and the VMM delivers the IPI with
// WHvRequestInterrupt (Type INIT 5 / SIPI 6), whereupon WHP's LAPIC on the target does the rest
// (an INIT parks it in StartupSuspend, a SIPI starts it at CS = vector << 8, base vector << 12,
// IP 0). This turns the xAPIC ICR value `icr`, written by VP `self` of a partition with
// `vcpu_count` VPs, into those requests:
// - delivery mode (bits 10:8) INIT 5 or SIPI 6, vector bits 7:0, destination mode bit 11,
//   trigger mode bit 15, destination bits 63:56;
// - a destination shorthand (bits 19:18: self 1, all 2, all but self 3) becomes one physical
//   request per VP index (WHP has no shorthand; a VP's APIC ID is its index);
// - an INIT level de-assert (level bit 14 clear, trigger level) gives no request: processors
//   since the Pentium 4 ignore it, and delivering it would re-INIT the target.
// nullopt when the delivery mode is neither INIT nor SIPI (the trap reports nothing else).
std::optional<std::vector<WHV_INTERRUPT_CONTROL>> InitSipiControls(uint64_t icr, uint32_t self,
                                                                   uint32_t vcpu_count);

}  // namespace virt::whp
