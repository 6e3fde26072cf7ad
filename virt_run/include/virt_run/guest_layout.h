// GuestLayout: where guest RAM, the legacy hole and the boot information area sit.
#pragma once

#include <cstdint>

#include "virt_run/checked.h"

namespace virt::run {

// A half-open range of guest physical addresses.
struct AddressRange {
  uint64_t begin = 0;
  uint64_t end = 0;  // exclusive
  uint64_t size() const { return end - begin; }
  bool Overlaps(const AddressRange& o) const { return begin < o.end && o.begin < end; }
  bool Contains(const AddressRange& o) const { return begin <= o.begin && o.end <= end; }
  bool operator==(const AddressRange&) const = default;
};

// RAM starts at guest physical 0. Up to kLowRamLimit (3 GiB) it is "low" RAM, below the
// 32-bit MMIO window (IOAPIC 0xfec00000, LAPIC 0xfee00000, the scratch MMIO 0xff000000,
// KVM's TSS pages 0xfeffc000); the rest starts at 4 GiB, as on QEMU's pc machine. The whole
// of it is ordinary RAM to the hypervisor; [0xa0000, 0x100000) is reported reserved to the
// guest (the PC's VGA/ROM hole, where no kernel may load).
struct GuestLayout {
  static constexpr uint64_t kLowRamLimit = 0xC0000000;
  static constexpr uint64_t kHighRamBase = 1ull << 32;
  static constexpr AddressRange kLegacyHole{0xA0000, 0x100000};
  static constexpr uint64_t kMiB = 1024 * 1024;

  uint64_t ram_bytes = 0;
  AddressRange low;   // [0, min(ram, 3 GiB))
  AddressRange high;  // [4 GiB, 4 GiB + the rest); empty when all RAM is low

  // The layout for `mib` MiB of RAM (at least 2: the 1 MiB below the legacy hole's end plus
  // room for the boot information).
  static Checked<GuestLayout> ForMemory(uint64_t mib);
};

}  // namespace virt::run
