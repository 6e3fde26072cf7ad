// Checks MsiRoutingTable editing, one-push batching, dirty tracking, swap-remove indexing and rollback on a failed push.
#include "virt/msi_routing_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <span>
#include <vector>

namespace virt {

// Readable failure output (found by argument-dependent lookup, so it lives in namespace virt).
static void PrintTo(const MsiMessage& m, std::ostream* os) {
  *os << "{0x" << std::hex << m.address << ", 0x" << m.data << std::dec << "}";
}
static void PrintTo(const RoutingEntry& e, std::ostream* os) {
  *os << "gsi " << e.gsi << " -> ";
  PrintTo(e.msi, os);
}

namespace {

using ::testing::UnorderedElementsAreArray;

// Stands in for the backend: records a copy of every pushed table, fails when told to.
struct FakePush {
  std::vector<std::vector<RoutingEntry>> pushes;
  std::optional<Error> fail_with;

  MsiRoutingTable::PushFn Fn() {
    return [this](std::span<const RoutingEntry> entries) -> Status {
      pushes.emplace_back(entries.begin(), entries.end());
      if (fail_with) return *fail_with;
      return Ok();
    };
  }
};

// A distinct, valid MSI per n (for n < 200).
MsiMessage Msi(uint32_t n) {
  return MsiMessage::Fixed(static_cast<uint8_t>(n % 256), static_cast<uint8_t>(0x20 + n % 200));
}

// Every GSI's current and committed entry, to compare whole-table state before and after.
struct Snapshot {
  std::vector<RoutingEntry> entries;
  std::vector<std::optional<MsiMessage>> current, committed;
  bool operator==(const Snapshot&) const = default;
};

Snapshot Take(const MsiRoutingTable& t, uint32_t capacity) {
  Snapshot s{{t.entries().begin(), t.entries().end()}, {}, {}};
  for (Gsi g = 0; g < capacity; ++g) {
    s.current.push_back(t.Get(g));
    s.committed.push_back(t.Committed(g));
  }
  return s;
}

class MsiRoutingTableTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kCapacity = 64;
  FakePush push_;
  MsiRoutingTable table_{kCapacity, push_.Fn()};
};

TEST_F(MsiRoutingTableTest, SetGetRemove) {
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_FALSE(table_.Get(3).has_value());

  ASSERT_TRUE(table_.Set(3, Msi(1)).has_value());
  EXPECT_EQ(table_.Get(3), Msi(1));
  EXPECT_FALSE(table_.Get(4).has_value());
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_TRUE(table_.dirty());

  ASSERT_TRUE(table_.Set(3, Msi(2)).has_value());  // replace, not add
  EXPECT_EQ(table_.Get(3), Msi(2));
  EXPECT_EQ(table_.size(), 1u);

  EXPECT_TRUE(table_.Remove(3));
  EXPECT_FALSE(table_.Get(3).has_value());
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_FALSE(table_.Remove(3));
  EXPECT_FALSE(table_.Remove(kCapacity));
  EXPECT_FALSE(table_.Get(kCapacity).has_value());
  EXPECT_TRUE(push_.pushes.empty()) << "Set/Remove must not push";
}

TEST_F(MsiRoutingTableTest, SetOutsideCapacityIsInvalidAndChangesNothing) {
  for (Gsi gsi : {kCapacity, kCapacity + 1, 0xFFFFFFFFu}) {
    auto status = table_.Set(gsi, Msi(1));
    ASSERT_FALSE(status.has_value()) << gsi;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_FALSE(table_.dirty());
  EXPECT_TRUE(table_.Set(kCapacity - 1, Msi(1)).has_value());
}

TEST(MsiRoutingTableBatchTest, ThousandChangesThenFlushIsOnePush) {
  constexpr uint32_t kN = 1000;
  FakePush push;
  MsiRoutingTable table(2048, push.Fn());
  std::vector<RoutingEntry> expected;
  for (uint32_t i = 0; i < kN; ++i) {
    const Gsi gsi = 24 + i * 2;  // sparse GSIs
    ASSERT_TRUE(table.Set(gsi, Msi(i)).has_value());
    expected.push_back({gsi, Msi(i)});
  }
  EXPECT_TRUE(push.pushes.empty());
  EXPECT_EQ(table.push_count(), 0u);

  ASSERT_TRUE(table.Flush().has_value());
  ASSERT_EQ(push.pushes.size(), 1u);
  EXPECT_EQ(table.push_count(), 1u);
  EXPECT_EQ(push.pushes[0].size(), kN);
  EXPECT_THAT(push.pushes[0], UnorderedElementsAreArray(expected));
  // The push carries the table in table order.
  EXPECT_EQ(push.pushes[0], std::vector<RoutingEntry>(table.entries().begin(), table.entries().end()));
  EXPECT_FALSE(table.dirty());
  for (const RoutingEntry& e : expected) EXPECT_EQ(table.Committed(e.gsi), e.msi);
}

TEST(MsiRoutingTableBatchTest, MixedEditsStillCostOnePush) {
  FakePush push;
  MsiRoutingTable table(2048, push.Fn());
  std::map<Gsi, MsiMessage> model;
  for (uint32_t i = 0; i < 600; ++i) {
    ASSERT_TRUE(table.Set(i, Msi(i)).has_value());
    model[i] = Msi(i);
  }
  for (uint32_t i = 0; i < 200; ++i) {  // retarget
    ASSERT_TRUE(table.Set(i, Msi(i + 1)).has_value());
    model[i] = Msi(i + 1);
  }
  for (uint32_t i = 300; i < 500; ++i) {  // remove
    ASSERT_TRUE(table.Remove(i));
    model.erase(i);
  }
  ASSERT_TRUE(table.Flush().has_value());
  ASSERT_EQ(push.pushes.size(), 1u);
  std::vector<RoutingEntry> expected;
  for (const auto& [gsi, msi] : model) expected.push_back({gsi, msi});
  EXPECT_THAT(push.pushes[0], UnorderedElementsAreArray(expected));
}

TEST_F(MsiRoutingTableTest, FlushWithNothingDirtyDoesNotPush) {
  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_TRUE(push_.pushes.empty());
  EXPECT_EQ(table_.push_count(), 0u);

  ASSERT_TRUE(table_.Set(1, Msi(1)).has_value());
  ASSERT_TRUE(table_.Flush().has_value());
  ASSERT_EQ(push_.pushes.size(), 1u);
  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_EQ(push_.pushes.size(), 1u);
  EXPECT_EQ(table_.push_count(), 1u);
}

TEST_F(MsiRoutingTableTest, SettingAnIdenticalMsiDoesNotDirty) {
  ASSERT_TRUE(table_.Set(5, Msi(5)).has_value());
  ASSERT_TRUE(table_.Flush().has_value());
  ASSERT_FALSE(table_.dirty());

  ASSERT_TRUE(table_.Set(5, Msi(5)).has_value());
  EXPECT_FALSE(table_.dirty());
  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_EQ(push_.pushes.size(), 1u);

  ASSERT_TRUE(table_.Set(5, Msi(6)).has_value());  // a real change does dirty
  EXPECT_TRUE(table_.dirty());
}

TEST_F(MsiRoutingTableTest, RemovingAnAbsentEntryDoesNotDirty) {
  EXPECT_FALSE(table_.Remove(9));
  EXPECT_FALSE(table_.dirty());
}

TEST_F(MsiRoutingTableTest, SwapRemoveKeepsTheIndexConsistent) {
  for (Gsi g = 0; g < 10; ++g) ASSERT_TRUE(table_.Set(g, Msi(g)).has_value());
  // Middle entries, the first entry and the last entry: each moves another entry (or none).
  for (Gsi g : {4u, 6u, 0u, 9u, 5u}) ASSERT_TRUE(table_.Remove(g)) << g;
  const std::vector<Gsi> kept{1, 2, 3, 7, 8};
  EXPECT_EQ(table_.size(), kept.size());
  for (Gsi g : kept) EXPECT_EQ(table_.Get(g), Msi(g)) << g;
  for (Gsi g : {0u, 4u, 5u, 6u, 9u}) EXPECT_FALSE(table_.Get(g).has_value()) << g;
  for (const RoutingEntry& e : table_.entries()) EXPECT_EQ(table_.Get(e.gsi), e.msi) << e.gsi;

  // The index still drives replace-in-place and further removes correctly.
  ASSERT_TRUE(table_.Set(8, Msi(80)).has_value());
  EXPECT_EQ(table_.size(), kept.size());
  EXPECT_EQ(table_.Get(8), Msi(80));
  EXPECT_TRUE(table_.Remove(1));
  EXPECT_FALSE(table_.Remove(1));
  EXPECT_EQ(table_.Get(8), Msi(80));
  EXPECT_EQ(table_.Get(7), Msi(7));
  ASSERT_TRUE(table_.Set(4, Msi(40)).has_value());  // re-add a removed GSI
  EXPECT_EQ(table_.Get(4), Msi(40));
  EXPECT_EQ(table_.size(), 5u);

  ASSERT_TRUE(table_.Flush().has_value());
  ASSERT_EQ(push_.pushes.size(), 1u);
  EXPECT_THAT(push_.pushes[0],
              UnorderedElementsAreArray(std::vector<RoutingEntry>{
                  {2, Msi(2)}, {3, Msi(3)}, {7, Msi(7)}, {8, Msi(80)}, {4, Msi(40)}}));
}

TEST_F(MsiRoutingTableTest, CommittedReflectsOnlyPushedState) {
  ASSERT_TRUE(table_.Set(1, Msi(1)).has_value());
  EXPECT_EQ(table_.Get(1), Msi(1));
  EXPECT_FALSE(table_.Committed(1).has_value());

  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_EQ(table_.Committed(1), Msi(1));

  ASSERT_TRUE(table_.Set(1, Msi(2)).has_value());
  ASSERT_TRUE(table_.Set(2, Msi(3)).has_value());
  EXPECT_EQ(table_.Get(1), Msi(2));
  EXPECT_EQ(table_.Committed(1), Msi(1));
  EXPECT_FALSE(table_.Committed(2).has_value());

  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_EQ(table_.Committed(1), Msi(2));
  EXPECT_EQ(table_.Committed(2), Msi(3));

  ASSERT_TRUE(table_.Remove(1));
  EXPECT_FALSE(table_.Get(1).has_value());
  EXPECT_EQ(table_.Committed(1), Msi(2));
  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_FALSE(table_.Committed(1).has_value());
  EXPECT_EQ(table_.Committed(2), Msi(3));
  EXPECT_FALSE(table_.Committed(kCapacity).has_value());
}

TEST_F(MsiRoutingTableTest, FailedPushRollsBackToLastPushedContents) {
  for (Gsi g = 10; g < 15; ++g) ASSERT_TRUE(table_.Set(g, Msi(g)).has_value());
  ASSERT_TRUE(table_.Flush().has_value());
  const Snapshot before = Take(table_, kCapacity);

  // Add, retarget and remove, then fail the push.
  ASSERT_TRUE(table_.Set(20, Msi(20)).has_value());
  ASSERT_TRUE(table_.Set(11, Msi(111)).has_value());
  ASSERT_TRUE(table_.Remove(12));
  ASSERT_TRUE(table_.Remove(10));
  const std::vector<RoutingEntry> attempted(table_.entries().begin(), table_.entries().end());
  ASSERT_NE(Take(table_, kCapacity), before);

  push_.fail_with = Error::Errno("KVM_SET_GSI_ROUTING", EBUSY);
  auto status = table_.Flush();
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kNative);
  EXPECT_EQ(status.error().native_code, EBUSY);
  EXPECT_STREQ(status.error().operation, "KVM_SET_GSI_ROUTING");

  ASSERT_EQ(push_.pushes.size(), 2u);
  EXPECT_EQ(push_.pushes[1], attempted) << "the failed push must have been offered the edits";
  EXPECT_EQ(Take(table_, kCapacity), before);
  EXPECT_FALSE(table_.dirty());
  EXPECT_FALSE(table_.Get(20).has_value());
  EXPECT_EQ(table_.Get(11), Msi(11));
  EXPECT_EQ(table_.Get(12), Msi(12));

  // Rolled back means in sync with the kernel: flushing again pushes nothing.
  ASSERT_TRUE(table_.Flush().has_value());
  EXPECT_EQ(push_.pushes.size(), 2u);
}

TEST_F(MsiRoutingTableTest, SuccessfulPushAfterRollbackWorks) {
  ASSERT_TRUE(table_.Set(1, Msi(1)).has_value());
  ASSERT_TRUE(table_.Set(2, Msi(2)).has_value());
  ASSERT_TRUE(table_.Flush().has_value());

  push_.fail_with = Error::Make(ErrorCode::kExhausted, "MSHV_SET_MSI_ROUTING");
  ASSERT_TRUE(table_.Set(3, Msi(3)).has_value());
  ASSERT_TRUE(table_.Remove(1));
  auto failed = table_.Flush();
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kExhausted);

  // The index was rebuilt: edits after the rollback land on the right entries.
  push_.fail_with.reset();
  ASSERT_TRUE(table_.Set(2, Msi(22)).has_value());
  ASSERT_TRUE(table_.Set(4, Msi(4)).has_value());
  ASSERT_TRUE(table_.Remove(1));
  ASSERT_TRUE(table_.Flush().has_value());
  ASSERT_EQ(push_.pushes.size(), 3u);
  EXPECT_THAT(push_.pushes[2],
              UnorderedElementsAreArray(std::vector<RoutingEntry>{{2, Msi(22)}, {4, Msi(4)}}));
  EXPECT_FALSE(table_.Committed(1).has_value());
  EXPECT_EQ(table_.Committed(2), Msi(22));
  EXPECT_FALSE(table_.Committed(3).has_value());
  EXPECT_EQ(table_.Committed(4), Msi(4));
  EXPECT_FALSE(table_.Get(3).has_value());
}

TEST_F(MsiRoutingTableTest, FailedFirstPushRollsBackToEmpty) {
  push_.fail_with = Error::Make(ErrorCode::kInvalidArgument, "KVM_SET_GSI_ROUTING");
  ASSERT_TRUE(table_.Set(7, Msi(7)).has_value());
  ASSERT_FALSE(table_.Flush().has_value());
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_FALSE(table_.Get(7).has_value());
  EXPECT_FALSE(table_.Committed(7).has_value());
}

// Random edits, flushes and failing flushes against two maps (current and as pushed).
TEST(MsiRoutingTableModelTest, MatchesAMapModelThroughRandomEditsAndFailures) {
  constexpr uint32_t kCapacity = 128;
  FakePush push;
  MsiRoutingTable table(kCapacity, push.Fn());
  std::map<Gsi, MsiMessage> current, committed;
  std::mt19937 rng(2024);
  std::uniform_int_distribution<Gsi> any_gsi(0, kCapacity - 1);
  std::uniform_int_distribution<int> pct(0, 99);

  for (int step = 0; step < 5000; ++step) {
    const int op = pct(rng);
    const Gsi gsi = any_gsi(rng);
    if (op < 50) {
      const MsiMessage msi = Msi(static_cast<uint32_t>(pct(rng)));
      ASSERT_TRUE(table.Set(gsi, msi).has_value());
      current[gsi] = msi;
    } else if (op < 85) {
      ASSERT_EQ(table.Remove(gsi), current.erase(gsi) == 1) << "step " << step;
    } else {
      const bool fail = pct(rng) < 30;
      push.fail_with = fail ? std::optional<Error>(Error::Errno("push", EIO)) : std::nullopt;
      const size_t pushes_before = push.pushes.size();
      const bool was_dirty = table.dirty();
      const Status status = table.Flush();
      ASSERT_EQ(push.pushes.size(), pushes_before + (was_dirty ? 1 : 0)) << "step " << step;
      if (was_dirty && fail) {
        ASSERT_FALSE(status.has_value());
        current = committed;
      } else {
        ASSERT_TRUE(status.has_value());
        committed = current;
      }
      ASSERT_FALSE(table.dirty());
    }
    ASSERT_EQ(table.size(), current.size()) << "step " << step;
    for (Gsi g = 0; g < kCapacity; ++g) {
      const auto cur = current.find(g);
      const auto com = committed.find(g);
      ASSERT_EQ(table.Get(g), cur == current.end() ? std::nullopt : std::optional(cur->second))
          << "step " << step << " gsi " << g;
      ASSERT_EQ(table.Committed(g), com == committed.end() ? std::nullopt : std::optional(com->second))
          << "step " << step << " gsi " << g;
    }
  }
}

}  // namespace
}  // namespace virt
