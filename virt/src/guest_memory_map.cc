// GuestMemoryMap: region validation, overlap search and slot reuse for MapMemory/UnmapMemory.
#include "virt/guest_memory_map.h"

#include <cstdio>
#include <iterator>
#include <string>

namespace virt {
namespace {

bool Aligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

GuestMemoryMap::GuestMemoryMap(uint32_t max_slots, const char* map_op, const char* unmap_op)
    : max_slots_(max_slots), map_op_(map_op), unmap_op_(unmap_op) {}

Status GuestMemoryMap::Validate(const MemoryRegion& region) const {
  const auto host = reinterpret_cast<uintptr_t>(region.host_address);
  if (region.size == 0 || !Aligned(region.guest_address) || !Aligned(region.size) ||
      !Aligned(host) || region.host_address == nullptr) {
    return Error::Make(ErrorCode::kInvalidArgument, map_op_,
                       "guest " + Hex(region.guest_address) + " size " + Hex(region.size) +
                           " host " + Hex(host) + " must be non-empty and 4 KiB aligned");
  }
  if (region.guest_address + region.size < region.guest_address) {
    return Error::Make(ErrorCode::kInvalidArgument, map_op_, "region wraps around 2^64");
  }
  return Ok();
}

uint32_t GuestMemoryMap::NextSlot() const {
  return free_slots_.empty() ? next_slot_ : free_slots_.back();
}

Result<GuestMemoryMap::Mapping> GuestMemoryMap::ReserveMap(const MemoryRegion& region) const {
  if (Status s = Validate(region); !s) return s.error();
  const uint64_t end = region.guest_address + region.size;
  auto next = regions_.lower_bound(region.guest_address);
  bool overlaps = next != regions_.end() && next->first < end;
  if (!overlaps && next != regions_.begin()) {
    auto prev = std::prev(next);
    overlaps = prev->first + prev->second.size > region.guest_address;
  }
  if (overlaps) {
    return Error::Make(ErrorCode::kOverlap, map_op_,
                       "[" + Hex(region.guest_address) + ", " + Hex(end) +
                           ") overlaps a mapped region");
  }
  if (free_slots_.empty() && next_slot_ >= max_slots_) {
    return Error::Make(ErrorCode::kExhausted, map_op_,
                       "all " + std::to_string(max_slots_) + " memory slots in use");
  }
  return Mapping{.guest_address = region.guest_address,
                 .size = region.size,
                 .host_address = reinterpret_cast<uintptr_t>(region.host_address),
                 .slot = NextSlot(),
                 .flags = region.flags};
}

void GuestMemoryMap::CommitMap(const Mapping& mapping) {
  if (!free_slots_.empty() && free_slots_.back() == mapping.slot) {
    free_slots_.pop_back();
  } else {
    ++next_slot_;
  }
  regions_.emplace(mapping.guest_address, mapping);
}

Result<GuestMemoryMap::Mapping> GuestMemoryMap::FindExact(uint64_t guest_address,
                                                          uint64_t size) const {
  auto it = regions_.find(guest_address);
  if (it == regions_.end() || it->second.size != size) {
    return Error::Make(ErrorCode::kNotFound, unmap_op_,
                       "no region mapped at exactly [" + Hex(guest_address) + ", +" + Hex(size) +
                           ")");
  }
  return it->second;
}

void GuestMemoryMap::CommitUnmap(const Mapping& mapping) {
  if (regions_.erase(mapping.guest_address) == 0) return;
  free_slots_.push_back(mapping.slot);
}

Result<GuestMemoryMap::Mapping> GuestMemoryMap::FindContaining(uint64_t guest_address,
                                                               uint64_t size,
                                                               const char* op) const {
  auto it = regions_.upper_bound(guest_address);
  if (it != regions_.begin()) {
    const Mapping& m = std::prev(it)->second;
    const uint64_t end = guest_address + size;
    if (end >= guest_address && guest_address >= m.guest_address &&
        end <= m.guest_address + m.size) {
      return m;
    }
  }
  return Error::Make(ErrorCode::kNotFound, op,
                     "no mapped region holds [" + Hex(guest_address) + ", " +
                         Hex(guest_address + size) + ")");
}

}  // namespace virt
