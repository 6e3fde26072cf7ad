// GuestLayout::ForMemory: splitting guest RAM around the 32-bit MMIO window.
#include "virt_run/guest_layout.h"

#include <algorithm>
#include <string>

namespace virt::run {

Checked<GuestLayout> GuestLayout::ForMemory(uint64_t mib) {
  if (mib < 2 || mib > (uint64_t{1} << 44) / kMiB) {
    return Reject("-m " + std::to_string(mib) + ": guest RAM must be 2 MiB .. 16 TiB");
  }
  GuestLayout layout;
  layout.ram_bytes = mib * kMiB;
  const uint64_t low = std::min(layout.ram_bytes, kLowRamLimit);
  layout.low = {0, low};
  layout.high = {kHighRamBase, kHighRamBase + (layout.ram_bytes - low)};
  return layout;
}

}  // namespace virt::run
