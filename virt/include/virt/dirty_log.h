// DirtyLog: the optional capability of reading which guest pages were written (Partition::dirty_log()).
#pragma once

#include <cstdint>
#include <vector>

#include "virt/result.h"

namespace virt {

// Tracks guest writes per 4 KiB page. One meaning on every backend:
//  - tracking covers every region mapped with MemoryFlags::kDirtyLog (KVM, WHP: per region;
//    MSHV tracks the whole partition once Enable is called, and reads are still per range);
//  - bit i of a read of [guest_address, guest_address + size) is page guest_address + i*4096:
//    set when that page was written since the previous read that covered it (or since tracking
//    began), clear otherwise; bits are packed into 64-bit words, least significant bit first;
//  - a read clears exactly the bits it returns: pages outside the range keep theirs, so reading
//    a region piecewise loses nothing.
// Thread-safe: reads of different ranges may come from several threads while vCPUs run.
class DirtyLog {
 public:
  virtual ~DirtyLog() = default;

  // Starts tracking (MSHV: for the whole partition; KVM, WHP: a no-op, regions mapped with
  // kDirtyLog are tracked from the map on). Idempotent.
  virtual Status Enable() = 0;

  // The dirty bits of [guest_address, guest_address + size), then clears them (see above).
  // The range must be page-aligned, non-empty and inside one region mapped with kDirtyLog
  // (kInvalidArgument otherwise; kNotFound when no such region); ceil(size / 4 KiB / 64) words.
  virtual Result<std::vector<uint64_t>> ReadAndClear(uint64_t guest_address, uint64_t size) = 0;
};

}  // namespace virt
