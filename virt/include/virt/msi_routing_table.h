// MsiRoutingTable: the in-memory MSI routing table that a backend pushes whole, with rollback.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "virt/gsi_table.h"
#include "virt/msi_message.h"
#include "virt/result.h"

namespace virt {

struct RoutingEntry {
  Gsi gsi = 0;
  MsiMessage msi;
  bool operator==(const RoutingEntry&) const = default;
};

// Holds the GSI -> MSI entries a backend's whole-table push (KVM_SET_GSI_ROUTING,
// MSHV_SET_MSI_ROUTING) installs. Set/Remove only edit memory and mark the table dirty; Flush
// pushes once, however many edits came before it, which is what makes batched programming of N
// routes O(N). After a failed push the table rolls back to the last pushed contents, so it always
// matches what the kernel holds. Set/Remove/Get are O(1); Flush is O(entries).
// Not thread-safe: the owning IrqFd serialises access.
class MsiRoutingTable {
 public:
  // The backend's push: receives every entry, in table order. Must not call back into the table.
  using PushFn = std::function<Status(std::span<const RoutingEntry>)>;

  // Reserves room for `capacity` entries (current and as pushed): no reallocation later.
  MsiRoutingTable(uint32_t capacity, PushFn push);

  // Adds or replaces the entry for `gsi` (< capacity; kInvalidArgument otherwise). Inline: a
  // retarget inside a batch is an index lookup and a store.
  Status Set(Gsi gsi, const MsiMessage& msi) {
    if (gsi >= index_.size()) [[unlikely]] return OutsideCapacity(gsi);
    SetWithinCapacity(gsi, msi);
    return Ok();
  }
  // Set for a caller that already knows gsi < capacity (its own tables are sized alike): no
  // check, nothing to fail.
  void SetWithinCapacity(Gsi gsi, const MsiMessage& msi) {
    if (const int32_t pos = index_[gsi]; pos >= 0) {
      RoutingEntry& entry = entries_[static_cast<size_t>(pos)];
      if (entry.msi != msi) {
        entry.msi = msi;
        dirty_ = true;
      }
    } else {
      Append(gsi, msi);
    }
  }
  // Removes the entry for `gsi`; false when there was none.
  bool Remove(Gsi gsi);

  std::optional<MsiMessage> Get(Gsi gsi) const;        // current (possibly unpushed) entry
  std::optional<MsiMessage> Committed(Gsi gsi) const;  // entry as last pushed
  std::span<const RoutingEntry> entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool dirty() const { return dirty_; }
  uint64_t push_count() const { return push_count_; }

  // Pushes the whole table when dirty (no-op otherwise). On failure the table reverts to the
  // last pushed contents and the push's error is returned.
  Status Flush();

 private:
  Error OutsideCapacity(Gsi gsi) const;
  // Inline as well: every new route of a batch takes it (the constructor reserved the room).
  void Append(Gsi gsi, const MsiMessage& msi) {
    index_[gsi] = static_cast<int32_t>(entries_.size());
    entries_.push_back({gsi, msi});
    dirty_ = true;
  }

  // What Set touches first (one cache line); the push function, used once a push, last.
  std::vector<RoutingEntry> entries_;    // dense, current
  std::vector<int32_t> index_;           // gsi -> position in entries_, -1 when absent
  bool dirty_ = false;
  uint64_t push_count_ = 0;
  std::vector<RoutingEntry> committed_;  // dense, as last pushed
  std::vector<int32_t> committed_index_;
  PushFn push_;
};

}  // namespace virt
