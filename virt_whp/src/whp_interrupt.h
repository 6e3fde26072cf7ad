// MSI -> WHV_INTERRUPT_CONTROL: how the WHP backend turns a device's MSI into a WHP interrupt.
#pragma once

#include "virt/msi_message.h"
#include "virt/result.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

// Decodes an x86 MSI into the control WHvRequestInterrupt and interrupt triggers take:
//   Destination     = address[19:12] | address[11:5] << 8 (the extended destination ID that
//                     x2APIC guests put in bits 11:5 carries APIC ID bits 14:8)
//   DestinationMode = address[2]  (0 physical, 1 logical)
//   Vector          = data[7:0]
//   Type            = data[10:8]  (fixed 0, lowest priority 1, NMI 4, INIT 5)
//   TriggerMode     = data[15]    (0 edge, 1 level)
// kInvalidArgument for an address outside 0xFEE00000-0xFEEFFFFF, a non-zero address[63:32]
// (WHP has no upper-address destination format), or a delivery mode WHP cannot inject (SMI,
// ExtINT, the reserved 3 and 6). Pure function.
Result<WHV_INTERRUPT_CONTROL> MsiToInterruptControl(const MsiMessage& msi);

}  // namespace virt::whp
