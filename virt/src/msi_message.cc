// x86 MSI address/data decoding and validation.
#include "virt/msi_message.h"

#include <cstdio>

namespace virt {

MsiMessage MsiMessage::Fixed(uint8_t apic_id, uint8_t vector) {
  return MsiMessage{kAddressBase | (static_cast<uint64_t>(apic_id) << 12), vector};
}

Result<DecodedMsi> MsiMessage::Decode() const {
  const uint32_t lo = address_lo();
  const uint32_t hi = address_hi();
  // address_hi is only meaningful as the extended destination ID (bits 31:8 of the APIC ID in
  // the x2APIC "extended destination" form KVM accepts); the low 32 bits must be 0xFEExxxxx.
  if ((lo & kAddressMask) != kAddressBase || (hi & 0xFFu) != 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "MSI address 0x%08x%08x is outside 0xFEE00000-0xFEEFFFFF", hi,
                  lo);
    return Error::Make(ErrorCode::kInvalidArgument, "MsiMessage::Decode", buf);
  }
  const uint32_t mode = (data >> 8) & 0x7;
  if (mode == 3 || mode == 6) {
    return Error::Make(ErrorCode::kInvalidArgument, "MsiMessage::Decode",
                       "reserved delivery mode " + std::to_string(mode));
  }
  DecodedMsi out;
  out.destination = ((lo >> 12) & 0xFF) | (hi & 0xFFFFFF00u);
  out.redirection_hint = (lo >> 3) & 1;
  out.destination_mode = ((lo >> 2) & 1) ? DestinationMode::kLogical : DestinationMode::kPhysical;
  out.vector = static_cast<uint8_t>(data & 0xFF);
  out.delivery_mode = static_cast<DeliveryMode>(mode);
  out.level_assert = (data >> 14) & 1;
  out.trigger_mode = ((data >> 15) & 1) ? TriggerMode::kLevel : TriggerMode::kEdge;
  return out;
}

}  // namespace virt
