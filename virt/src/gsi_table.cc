// GsiTable: O(1) GSI allocation over a free stack.
#include "virt/gsi_table.h"

#include <algorithm>

#include <string>

namespace virt {

Result<GsiTable> GsiTable::Create(uint32_t capacity) {
  if (capacity == 0) {
    return Error::Make(ErrorCode::kInvalidArgument, "GsiTable::Create", "capacity is 0");
  }
  return GsiTable(capacity);
}

GsiTable::GsiTable(uint32_t capacity) : state_(capacity, kFree) {
  free_.reserve(capacity);
  RebuildFreeStack();
}

void GsiTable::RebuildFreeStack() {
  free_.clear();
  for (uint32_t gsi = capacity(); gsi-- > 0;) {
    if (state_[gsi] == kFree) free_.push_back(gsi);
  }
}

Status GsiTable::Reserve(Gsi first, uint32_t count) {
  if (count == 0 || first >= capacity() || count > capacity() - first) {
    return Error::Make(ErrorCode::kInvalidArgument, "GsiTable::Reserve",
                       "range [" + std::to_string(first) + ", +" + std::to_string(count) +
                           ") outside capacity " + std::to_string(capacity()));
  }
  for (Gsi gsi = first; gsi < first + count; ++gsi) {
    if (state_[gsi] == kAllocated) {
      return Error::Make(ErrorCode::kFailedPrecondition, "GsiTable::Reserve",
                         "GSI " + std::to_string(gsi) + " is allocated");
    }
  }
  for (Gsi gsi = first; gsi < first + count; ++gsi) {
    if (state_[gsi] == kFree) {
      state_[gsi] = kReserved;
      ++reserved_;
    }
  }
  RebuildFreeStack();
  return Ok();
}

[[gnu::cold, gnu::noinline]] Error GsiTable::Exhausted() const {
  return Error::Make(ErrorCode::kExhausted, "GsiTable::Allocate",
                     "all " + std::to_string(capacity() - reserved_) + " GSIs in use (" +
                         std::to_string(capacity()) + " total, " + std::to_string(reserved_) +
                         " reserved)");
}

Result<Gsi> GsiTable::AllocateAt(Gsi gsi) {
  if (gsi >= capacity() || state_[gsi] == kReserved) {
    return Error::Make(ErrorCode::kInvalidArgument, "GsiTable::AllocateAt",
                       "GSI " + std::to_string(gsi) + (gsi >= capacity() ? " out of range"
                                                                           : " is reserved"));
  }
  if (state_[gsi] == kAllocated) {
    return Error::Make(ErrorCode::kFailedPrecondition, "GsiTable::AllocateAt",
                       "GSI " + std::to_string(gsi) + " is in use");
  }
  // Keep the stack's order for the others: the next Allocate hands out what it would have.
  free_.erase(std::find(free_.begin(), free_.end(), gsi));
  state_[gsi] = kAllocated;
  ++allocated_;
  return gsi;
}

Status GsiTable::Free(Gsi gsi) {
  if (gsi >= capacity() || state_[gsi] == kReserved) {
    return Error::Make(ErrorCode::kInvalidArgument, "GsiTable::Free",
                       "GSI " + std::to_string(gsi) + (gsi >= capacity() ? " out of range"
                                                                           : " is reserved"));
  }
  if (state_[gsi] == kFree) {
    return Error::Make(ErrorCode::kAlreadyReleased, "GsiTable::Free",
                       "GSI " + std::to_string(gsi) + " is not allocated");
  }
  state_[gsi] = kFree;
  --allocated_;
  free_.push_back(gsi);
  return Ok();
}

}  // namespace virt
