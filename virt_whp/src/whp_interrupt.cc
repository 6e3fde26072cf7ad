// MSI -> WHV_INTERRUPT_CONTROL decoding for WHvRequestInterrupt and interrupt triggers.
#include "whp_interrupt.h"

#include <cstdio>
#include <string>

namespace virt::whp {

Result<WHV_INTERRUPT_CONTROL> MsiToInterruptControl(const MsiMessage& msi) {
  constexpr const char* kOp = "MsiToInterruptControl";
  if (msi.address_hi() != 0) {
    char detail[96];
    std::snprintf(detail, sizeof detail,
                  "MSI address 0x%llx: WHP takes no destination bits above bit 31",
                  static_cast<unsigned long long>(msi.address));
    return Error::Make(ErrorCode::kInvalidArgument, kOp, detail);
  }
  auto decoded = msi.Decode();  // checks 0xFEExxxxx and the reserved delivery modes
  if (!decoded) return decoded.error();
  const uint32_t type = (msi.data >> 8) & 0x7;
  if (type != WHvX64InterruptTypeFixed && type != WHvX64InterruptTypeLowestPriority &&
      type != WHvX64InterruptTypeNmi && type != WHvX64InterruptTypeInit) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "MSI delivery mode " + std::to_string(type) +
                           " (SMI or ExtINT) cannot be injected through WHP");
  }
  const uint32_t address = msi.address_lo();
  WHV_INTERRUPT_CONTROL control{};
  control.Type = type;
  control.DestinationMode = (address >> 2) & 1;
  control.TriggerMode = (msi.data >> 15) & 1;
  control.Destination = ((address >> 12) & 0xFF) | (((address >> 5) & 0x7F) << 8);
  control.Vector = msi.data & 0xFF;
  return control;
}

}  // namespace virt::whp
