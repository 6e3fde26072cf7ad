// MsiRoutingTable: dense entries with a GSI index, pushed whole, rolled back on failure.
#include "virt/msi_routing_table.h"

#include <string>
#include <utility>

namespace virt {

MsiRoutingTable::MsiRoutingTable(uint32_t capacity, PushFn push)
    : index_(capacity, -1), committed_index_(capacity, -1), push_(std::move(push)) {
  // Room for a full table up front (address space only until used), so programming many routes
  // and the first pushes never reallocate.
  entries_.reserve(capacity);
  committed_.reserve(capacity);
}

[[gnu::cold, gnu::noinline]] Error MsiRoutingTable::OutsideCapacity(Gsi gsi) const {
  return Error::Make(ErrorCode::kInvalidArgument, "MsiRoutingTable::Set",
                     "GSI " + std::to_string(gsi) + " outside capacity " +
                         std::to_string(index_.size()));
}

bool MsiRoutingTable::Remove(Gsi gsi) {
  if (gsi >= index_.size() || index_[gsi] < 0) return false;
  const auto pos = static_cast<size_t>(index_[gsi]);
  if (pos + 1 != entries_.size()) {
    entries_[pos] = entries_.back();
    index_[entries_[pos].gsi] = static_cast<int32_t>(pos);
  }
  entries_.pop_back();
  index_[gsi] = -1;
  dirty_ = true;
  return true;
}

std::optional<MsiMessage> MsiRoutingTable::Get(Gsi gsi) const {
  if (gsi >= index_.size() || index_[gsi] < 0) return std::nullopt;
  return entries_[static_cast<size_t>(index_[gsi])].msi;
}

std::optional<MsiMessage> MsiRoutingTable::Committed(Gsi gsi) const {
  if (gsi >= committed_index_.size() || committed_index_[gsi] < 0) return std::nullopt;
  return committed_[static_cast<size_t>(committed_index_[gsi])].msi;
}

Status MsiRoutingTable::Flush() {
  if (!dirty_) return Ok();
  Status pushed = push_(entries_);
  ++push_count_;
  if (pushed) {
    // Only the entries that changed need re-indexing in principle; a full copy keeps this simple
    // and is O(entries), the same order as building the push buffer.
    for (const RoutingEntry& e : committed_) committed_index_[e.gsi] = -1;
    committed_ = entries_;
    for (size_t i = 0; i < committed_.size(); ++i) {
      committed_index_[committed_[i].gsi] = static_cast<int32_t>(i);
    }
  } else {
    for (const RoutingEntry& e : entries_) index_[e.gsi] = -1;
    entries_ = committed_;
    for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].gsi] = static_cast<int32_t>(i);
  }
  dirty_ = false;
  return pushed;
}

}  // namespace virt
