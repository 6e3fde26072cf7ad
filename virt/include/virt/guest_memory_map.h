// GuestMemoryMap: a partition's validated guest memory regions and the slot numbers they use.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "virt/memory_region.h"
#include "virt/result.h"

namespace virt {

// The bookkeeping behind Partition::MapMemory / UnmapMemory, shared by every kernel backend:
// region validation (page alignment, non-empty, no wraparound), overlap detection, slot numbers
// in [0, max_slots) handed out lowest-free-first and reused after an unmap, and exact-match
// lookup for unmaps.
//
// Two-phase, so the backend's ioctl runs between the phases and a failed ioctl leaves the map as
// it was: ReserveMap / FindExact only look (and pick a slot); CommitMap / CommitUnmap record the
// outcome once the kernel accepted it. Not thread-safe: the owning partition holds one lock
// across Reserve, its ioctl and Commit. Reserve/FindExact are O(log n), commits O(log n).
class GuestMemoryMap {
 public:
  // A mapped (or about-to-be-mapped) region and its slot.
  struct Mapping {
    uint64_t guest_address = 0;
    uint64_t size = 0;
    uintptr_t host_address = 0;
    uint32_t slot = 0;
    MemoryFlags flags = MemoryFlags::kNone;
    bool operator==(const Mapping&) const = default;
  };

  // max_slots: how many regions the backend can hold at once (KVM: KVM_CAP_NR_MEMSLOTS).
  // map_op / unmap_op: static strings naming the operations in errors
  // ("KvmPartition::MapMemory").
  GuestMemoryMap(uint32_t max_slots, const char* map_op, const char* unmap_op);

  // kInvalidArgument (naming map_op) unless guest address, size and host address are page
  // aligned, size is non-zero, the host address is not null and the region does not wrap 2^64.
  Status Validate(const MemoryRegion& region) const;

  // Phase one of a map: Validate, then kOverlap when the region overlaps a mapped one and
  // kExhausted when every slot is in use; otherwise the Mapping (with the slot to use) that
  // CommitMap will record. The map is unchanged either way.
  Result<Mapping> ReserveMap(const MemoryRegion& region) const;
  // Phase two: records `mapping`, which must come from the latest ReserveMap with no other
  // change to the map in between.
  void CommitMap(const Mapping& mapping);

  // Phase one of an unmap: the mapping at exactly [guest_address, guest_address + size);
  // kNotFound (naming unmap_op) otherwise. The map is unchanged.
  Result<Mapping> FindExact(uint64_t guest_address, uint64_t size) const;
  // Phase two: forgets `mapping` (from FindExact) and makes its slot the next one handed out.
  void CommitUnmap(const Mapping& mapping);

  // The mapping that contains all of [guest_address, guest_address + size); kNotFound (naming
  // `op`) when no single mapping does. O(log n).
  Result<Mapping> FindContaining(uint64_t guest_address, uint64_t size, const char* op) const;

  size_t size() const { return regions_.size(); }
  uint32_t max_slots() const { return max_slots_; }

 private:
  uint32_t NextSlot() const;

  const uint32_t max_slots_;
  const char* map_op_;
  const char* unmap_op_;
  std::map<uint64_t, Mapping> regions_;  // guest address -> mapping
  std::vector<uint32_t> free_slots_;     // stack of unmapped slots; back() is reused first
  uint32_t next_slot_ = 0;               // slots below this have been handed out once
};

}  // namespace virt
