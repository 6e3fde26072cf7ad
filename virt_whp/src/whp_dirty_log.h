// WhpDirtyLog: WHvQueryGpaRangeDirtyBitmap behind DirtyLog's per-range meaning.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "virt/dirty_log.h"
#include "virt/guest_memory_map.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

class WhpPartitionHandle;

// WHP tracks the ranges mapped with WHvMapGpaRangeFlagTrackDirtyPages (MemoryFlags::kDirtyLog)
// from the map on, and WHvQueryGpaRangeDirtyBitmap returns and clears the bits of exactly the
// range asked for, so a read is one call and nothing is kept here. Thread-safe (the lookup
// takes the partition's memory lock; WHP's call is itself thread-safe).
class WhpDirtyLog final : public DirtyLog {
 public:
  // Looks up the region holding a range (the partition's map, under its lock).
  using FindRegion = std::function<Result<GuestMemoryMap::Mapping>(uint64_t, uint64_t)>;

  WhpDirtyLog(WhpPartitionHandle& partition, FindRegion find);

  // A no-op: regions mapped with kDirtyLog are tracked from their map on.
  Status Enable() override { return Ok(); }

  // WHvQueryGpaRangeDirtyBitmap(guest_address, size, words, words * 8 bytes). The range checks
  // of DirtyLog before any call; bits past the range are cleared in the last word.
  Result<std::vector<uint64_t>> ReadAndClear(uint64_t guest_address, uint64_t size) override;

 private:
  WhpPartitionHandle& partition_;
  FindRegion find_;
};

}  // namespace virt::whp
