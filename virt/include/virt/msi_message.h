// MsiMessage: the raw MSI address/data pair and its x86 decoding.
#pragma once

#include <cstdint>

#include "virt/result.h"

namespace virt {

// x86 interrupt delivery modes as encoded in MSI data bits 10:8.
enum class DeliveryMode : uint8_t {
  kFixed = 0,
  kLowestPriority = 1,
  kSmi = 2,
  kNmi = 4,
  kInit = 5,
  kExtInt = 7,
};

enum class DestinationMode : uint8_t { kPhysical = 0, kLogical = 1 };
enum class TriggerMode : uint8_t { kEdge = 0, kLevel = 1 };

// The fields an x86 MSI carries, decoded from address/data (Intel SDM vol. 3, 11.11).
struct DecodedMsi {
  uint32_t destination = 0;  // APIC ID: address bits 19:12; address_hi bits 31:8 give
                             // destination bits 31:8 (KVM's x2APIC MSI format)
  DestinationMode destination_mode = DestinationMode::kPhysical;
  bool redirection_hint = false;
  uint8_t vector = 0;
  DeliveryMode delivery_mode = DeliveryMode::kFixed;
  TriggerMode trigger_mode = TriggerMode::kEdge;
  bool level_assert = false;

  bool operator==(const DecodedMsi&) const = default;
};

// A message-signalled interrupt exactly as a device writes it: a 64-bit address and 32-bit data.
struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;

  static constexpr uint64_t kAddressBase = 0xFEE00000;
  static constexpr uint64_t kAddressMask = 0xFFF00000;

  // Builds a fixed, edge-triggered, physical-destination MSI for `vector` on APIC `apic_id`
  // (0..255).
  static MsiMessage Fixed(uint8_t apic_id, uint8_t vector);

  uint32_t address_lo() const { return static_cast<uint32_t>(address); }
  uint32_t address_hi() const { return static_cast<uint32_t>(address >> 32); }

  // True when Decode() would succeed: the address is 0xFEExxxxx (address_hi carries only
  // extended destination bits) and the delivery mode is not reserved. Inline and allocation-free
  // for hot paths (SetMsi, RequestMsi); call Decode() for the error that names the fault.
  bool IsValid() const {
    const uint32_t mode = (data >> 8) & 0x7;
    return (address_lo() & kAddressMask) == kAddressBase && (address_hi() & 0xFFu) == 0 &&
           mode != 3 && mode != 6;
  }
  // Data bit 15: level-triggered (Decode()'s trigger_mode, without the validation).
  bool level_triggered() const { return ((data >> 15) & 1) != 0; }

  // Decodes the x86 fields. Fails with kInvalidArgument when the address is outside
  // 0xFEE00000-0xFEEFFFFF (address_hi may only carry extended destination bits) or the delivery
  // mode is reserved (3 or 6).
  Result<DecodedMsi> Decode() const;

  bool operator==(const MsiMessage&) const = default;
};

}  // namespace virt
