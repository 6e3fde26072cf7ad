// GsiTable: fixed-capacity allocator of interrupt routing slots (GSIs) with reserved ranges.
#pragma once

#include <cstdint>
#include <vector>

#include "virt/result.h"

namespace virt {

using Gsi = uint32_t;

// Hands out GSIs in [0, capacity) except reserved ones. Allocate and Free are O(1): free GSIs
// sit on a stack (lowest first on a fresh table; a freed GSI is the next one handed out).
// Not thread-safe: the owner (an IrqFd) serialises access.
class GsiTable {
 public:
  // capacity: number of GSIs the backend's routing table can hold (KVM: KVM_CAP_IRQ_ROUTING's
  // max, MSHV: 2048). Fails on capacity 0.
  static Result<GsiTable> Create(uint32_t capacity);

  // Marks [first, first + count) reserved (e.g. 0-23 for IOAPIC pins). Fails with
  // kInvalidArgument when out of range and kFailedPrecondition when any GSI in the range is
  // allocated; on failure nothing changes. O(capacity).
  Status Reserve(Gsi first, uint32_t count);

  // Takes a free GSI. kExhausted (naming capacity and reserved count) when none is left.
  // Inline: one pop per route made.
  Result<Gsi> Allocate() {
    if (free_.empty()) [[unlikely]] return Exhausted();
    const Gsi gsi = free_.back();
    free_.pop_back();
    state_[gsi] = kAllocated;
    ++allocated_;
    return gsi;
  }

  // Takes exactly `gsi` (restoring a snapshot): kInvalidArgument when out of range or reserved,
  // kFailedPrecondition when allocated; the table is unchanged on error. O(free GSIs).
  Result<Gsi> AllocateAt(Gsi gsi);

  // Returns an allocated GSI. kInvalidArgument when out of range or reserved,
  // kAlreadyReleased when already free; the table is unchanged on error.
  Status Free(Gsi gsi);

  bool IsAllocated(Gsi gsi) const { return gsi < state_.size() && state_[gsi] == kAllocated; }
  bool IsReserved(Gsi gsi) const { return gsi < state_.size() && state_[gsi] == kReserved; }
  uint32_t capacity() const { return static_cast<uint32_t>(state_.size()); }
  uint32_t allocated() const { return allocated_; }
  uint32_t reserved() const { return reserved_; }
  uint32_t available() const { return static_cast<uint32_t>(free_.size()); }

 private:
  enum State : uint8_t { kFree, kAllocated, kReserved };
  explicit GsiTable(uint32_t capacity);
  void RebuildFreeStack();
  Error Exhausted() const;

  std::vector<State> state_;
  std::vector<Gsi> free_;  // stack; back() is handed out next
  uint32_t allocated_ = 0;
  uint32_t reserved_ = 0;
};

}  // namespace virt
