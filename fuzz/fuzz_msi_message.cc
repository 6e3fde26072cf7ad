// libFuzzer target: MsiMessage::Decode on arbitrary address/data pairs, checked field by field.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "virt/msi_message.h"
#include "fuzz_check.h"

// Input: 8 bytes of address, 4 of data (little-endian, missing bytes zero), then one APIC ID and
// one vector byte for MsiMessage::Fixed.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  uint8_t raw[14] = {};
  std::memcpy(raw, bytes, size < sizeof raw ? size : sizeof raw);
  virt::MsiMessage msi;
  std::memcpy(&msi.address, raw, 8);
  std::memcpy(&msi.data, raw + 8, 4);

  const uint32_t lo = static_cast<uint32_t>(msi.address);
  const uint32_t hi = static_cast<uint32_t>(msi.address >> 32);
  const uint32_t mode = (msi.data >> 8) & 7;
  const bool valid = (lo & 0xFFF00000u) == 0xFEE00000u && (hi & 0xFF) == 0 && mode != 3 &&
                     mode != 6;
  auto decoded = msi.Decode();
  // Garbage is an error value, never a crash; everything else decodes.
  FUZZ_CHECK(decoded.has_value() == valid);
  if (decoded) {
    FUZZ_CHECK(decoded->destination == (((lo >> 12) & 0xFF) | (hi & 0xFFFFFF00u)));
    FUZZ_CHECK(decoded->vector == (msi.data & 0xFF));
    FUZZ_CHECK(static_cast<uint32_t>(decoded->delivery_mode) == mode);
    FUZZ_CHECK(decoded->redirection_hint == (((lo >> 3) & 1) != 0));
    FUZZ_CHECK((decoded->destination_mode == virt::DestinationMode::kLogical) ==
               (((lo >> 2) & 1) != 0));
    FUZZ_CHECK(decoded->level_assert == (((msi.data >> 14) & 1) != 0));
    FUZZ_CHECK((decoded->trigger_mode == virt::TriggerMode::kLevel) ==
               (((msi.data >> 15) & 1) != 0));
  } else {
    FUZZ_CHECK(decoded.error().code == virt::ErrorCode::kInvalidArgument);
    FUZZ_CHECK(!decoded.error().Message().empty());
  }

  // What Fixed builds always decodes back to its APIC ID and vector, fixed and edge-triggered.
  const auto fixed = virt::MsiMessage::Fixed(raw[12], raw[13]).Decode();
  FUZZ_CHECK(fixed.has_value());
  FUZZ_CHECK(fixed->destination == raw[12] && fixed->vector == raw[13]);
  FUZZ_CHECK(fixed->delivery_mode == virt::DeliveryMode::kFixed);
  FUZZ_CHECK(fixed->trigger_mode == virt::TriggerMode::kEdge);
  FUZZ_CHECK(fixed->destination_mode == virt::DestinationMode::kPhysical);
  return 0;
}
