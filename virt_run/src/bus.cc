// Bus: sorted, non-overlapping ranges; lookup by binary search; all-ones for unclaimed reads.
#include "virt_run/bus.h"

#include <algorithm>
#include <cstring>

#include "virt_run/checked.h"

namespace virt::run {

Status Bus::Insert(uint64_t base, uint64_t size, Device* device, std::string name) {
  if (size == 0 || base + size < base || device == nullptr) {
    return Error::Make(ErrorCode::kInvalidArgument, "Bus::Insert",
                       name + ": empty or wrapping range at " + Hex(base));
  }
  auto at = std::upper_bound(entries_.begin(), entries_.end(), base,
                             [](uint64_t b, const Entry& e) { return b < e.base; });
  const bool hits_previous = at != entries_.begin() && std::prev(at)->base + std::prev(at)->size > base;
  const bool hits_next = at != entries_.end() && base + size > at->base;
  if (hits_previous || hits_next) {
    const Entry& other = hits_previous ? *std::prev(at) : *at;
    return Error::Make(ErrorCode::kOverlap, "Bus::Insert",
                       name + " at " + Hex(base) + " overlaps " + other.name + " at " +
                           Hex(other.base));
  }
  entries_.insert(at, Entry{base, size, device, std::move(name)});
  return Ok();
}

const Bus::Entry* Bus::Find(uint64_t address) const {
  auto at = std::upper_bound(entries_.begin(), entries_.end(), address,
                             [](uint64_t a, const Entry& e) { return a < e.base; });
  if (at == entries_.begin()) return nullptr;
  const Entry& e = *std::prev(at);
  return address - e.base < e.size ? &e : nullptr;
}

Status Bus::Read(uint64_t address, std::span<uint8_t> data) {
  std::memset(data.data(), 0xff, data.size());
  const Entry* e = Find(address);
  if (e == nullptr) {
    unclaimed_reads_.fetch_add(1, std::memory_order_relaxed);
    return Ok();
  }
  const uint64_t offset = address - e->base;
  return e->device->Read(offset, data.first(std::min<uint64_t>(data.size(), e->size - offset)));
}

Status Bus::Write(uint64_t address, std::span<const uint8_t> data) {
  const Entry* e = Find(address);
  if (e == nullptr) {
    unclaimed_writes_.fetch_add(1, std::memory_order_relaxed);
    return Ok();
  }
  const uint64_t offset = address - e->base;
  return e->device->Write(offset, data.first(std::min<uint64_t>(data.size(), e->size - offset)));
}

std::optional<std::string> Bus::Claimant(uint64_t address) const {
  const Entry* e = Find(address);
  if (e == nullptr) return std::nullopt;
  return e->name;
}

}  // namespace virt::run
