// MshvRoutingBuffer: the MSI routing table in the kernel's layout, in one reusable buffer.
#include "mshv_routing_buffer.h"

#include <cstring>

namespace virt::mshv {

const mshv_user_irq_table& MshvRoutingBuffer::Build(std::span<const RoutingEntry> entries) {
  const size_t bytes = kMshvUserIrqTableEntriesOffset + entries.size() * sizeof(mshv_user_irq_entry);
  const size_t words = (bytes + sizeof(uint64_t) - 1) / sizeof(uint64_t);
  if (storage_.size() < words) storage_.resize(words);
  auto* base = reinterpret_cast<uint8_t*>(storage_.data());
  mshv_user_irq_table header{};
  header.nr = static_cast<uint32_t>(entries.size());
  header.rsvd = 0;
  std::memcpy(base, &header, sizeof header);
  uint8_t* out = base + kMshvUserIrqTableEntriesOffset;
  for (const RoutingEntry& r : entries) {
    mshv_user_irq_entry e{};
    e.gsi = r.gsi;
    e.address_lo = r.msi.address_lo();
    e.address_hi = r.msi.address_hi();
    e.data = r.msi.data;
    std::memcpy(out, &e, sizeof e);
    out += sizeof e;
  }
  return *reinterpret_cast<const mshv_user_irq_table*>(base);
}

}  // namespace virt::mshv
