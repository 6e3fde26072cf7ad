// Checks GsiTable allocation, reserved ranges, error paths that must leave the table unchanged, and counters.
#include "virt/gsi_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iterator>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace virt {
namespace {

using ::testing::HasSubstr;

GsiTable MustCreate(uint32_t capacity) {
  auto table = GsiTable::Create(capacity);
  EXPECT_TRUE(table.has_value());
  return std::move(table).value();
}

struct Counters {
  uint32_t allocated, available, reserved;
  bool operator==(const Counters&) const = default;
};

Counters CountersOf(const GsiTable& t) { return {t.allocated(), t.available(), t.reserved()}; }

// Snapshot of every GSI's state, to prove an operation changed nothing.
std::vector<int> StatesOf(const GsiTable& t) {
  std::vector<int> out;
  for (Gsi g = 0; g < t.capacity(); ++g) out.push_back(t.IsAllocated(g) ? 1 : t.IsReserved(g) ? 2 : 0);
  return out;
}

TEST(GsiTableTest, CreateZeroCapacityFails) {
  auto table = GsiTable::Create(0);
  ASSERT_FALSE(table.has_value());
  EXPECT_EQ(table.error().code, ErrorCode::kInvalidArgument);
}

TEST(GsiTableTest, FreshTableHandsOutLowestFirst) {
  GsiTable t = MustCreate(8);
  EXPECT_EQ(t.capacity(), 8u);
  EXPECT_EQ(CountersOf(t), (Counters{0, 8, 0}));
  for (Gsi expected = 0; expected < 8; ++expected) {
    auto gsi = t.Allocate();
    ASSERT_TRUE(gsi.has_value());
    EXPECT_EQ(*gsi, expected);
    EXPECT_TRUE(t.IsAllocated(*gsi));
  }
  EXPECT_EQ(CountersOf(t), (Counters{8, 0, 0}));
}

TEST(GsiTableTest, AllocatingEverythingThenOneMoreIsExhausted) {
  GsiTable t = MustCreate(32);
  ASSERT_TRUE(t.Reserve(0, 5).has_value());
  std::set<Gsi> seen;
  for (uint32_t i = 0; i < 27; ++i) {
    auto gsi = t.Allocate();
    ASSERT_TRUE(gsi.has_value()) << "allocation " << i;
    EXPECT_TRUE(seen.insert(*gsi).second) << "GSI " << *gsi << " handed out twice";
  }
  auto extra = t.Allocate();
  ASSERT_FALSE(extra.has_value());
  EXPECT_EQ(extra.error().code, ErrorCode::kExhausted);
  const std::string message = extra.error().Message();
  EXPECT_THAT(message, HasSubstr("32"));  // capacity
  EXPECT_THAT(message, HasSubstr("5 reserved"));
  EXPECT_EQ(CountersOf(t), (Counters{27, 0, 5}));
}

TEST(GsiTableTest, ReservedRangeIsNeverHandedOut) {
  GsiTable t = MustCreate(64);
  ASSERT_TRUE(t.Reserve(0, 24).has_value());
  EXPECT_EQ(CountersOf(t), (Counters{0, 40, 24}));
  for (Gsi g = 0; g < 24; ++g) EXPECT_TRUE(t.IsReserved(g)) << g;
  EXPECT_FALSE(t.IsReserved(24));

  auto first = t.Allocate();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, 24u);
  for (uint32_t i = 1; i < 40; ++i) {
    auto gsi = t.Allocate();
    ASSERT_TRUE(gsi.has_value());
    EXPECT_GE(*gsi, 24u);
    EXPECT_LT(*gsi, 64u);
  }
  EXPECT_FALSE(t.Allocate().has_value());
}

TEST(GsiTableTest, ReserveInTheMiddleSkipsTheHole) {
  GsiTable t = MustCreate(10);
  ASSERT_TRUE(t.Reserve(2, 3).has_value());  // 2, 3, 4
  std::vector<Gsi> got;
  while (auto gsi = t.Allocate()) got.push_back(*gsi);
  EXPECT_EQ(got, (std::vector<Gsi>{0, 1, 5, 6, 7, 8, 9}));
}

TEST(GsiTableTest, OverlappingReserveCountsEachGsiOnce) {
  GsiTable t = MustCreate(16);
  ASSERT_TRUE(t.Reserve(0, 8).has_value());
  ASSERT_TRUE(t.Reserve(4, 8).has_value());
  EXPECT_EQ(CountersOf(t), (Counters{0, 4, 12}));
}

TEST(GsiTableTest, ReserveOutOfRangeFailsAndChangesNothing) {
  GsiTable t = MustCreate(16);
  ASSERT_TRUE(t.Allocate().has_value());
  const Counters before = CountersOf(t);
  const std::vector<int> states = StatesOf(t);

  for (auto [first, count] : {std::pair<Gsi, uint32_t>{16, 1}, {10, 7}, {0, 17}, {15, 2},
                              {0, 0}, {100, 1}, {1, 0xFFFFFFFFu}, {0xFFFFFFFFu, 2}}) {
    auto status = t.Reserve(first, count);
    ASSERT_FALSE(status.has_value()) << first << "+" << count;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument) << first << "+" << count;
    EXPECT_EQ(CountersOf(t), before);
    EXPECT_EQ(StatesOf(t), states);
  }
  // The last valid GSI can still be reserved exactly.
  EXPECT_TRUE(t.Reserve(15, 1).has_value());
}

TEST(GsiTableTest, ReserveOverAnAllocatedGsiFailsAndChangesNothing) {
  GsiTable t = MustCreate(16);
  std::vector<Gsi> got;
  for (int i = 0; i < 6; ++i) got.push_back(t.Allocate().value());  // 0..5
  ASSERT_TRUE(t.Free(1).has_value());
  const Counters before = CountersOf(t);
  const std::vector<int> states = StatesOf(t);

  // [0, 10) covers free GSIs (1, 6..9) and allocated ones: nothing may become reserved.
  auto status = t.Reserve(0, 10);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(CountersOf(t), before);
  EXPECT_EQ(StatesOf(t), states);
  EXPECT_FALSE(t.IsReserved(1));
  EXPECT_FALSE(t.IsReserved(9));

  // Free GSIs stay allocatable: the failed reserve did not swallow GSI 1.
  auto next = t.Allocate();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 1u);
}

TEST(GsiTableTest, FreeOfReservedGsiFailsAndChangesNothing) {
  GsiTable t = MustCreate(16);
  ASSERT_TRUE(t.Reserve(0, 4).has_value());
  ASSERT_TRUE(t.Allocate().has_value());
  const Counters before = CountersOf(t);
  auto status = t.Free(2);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(CountersOf(t), before);
  EXPECT_TRUE(t.IsReserved(2));
  EXPECT_FALSE(t.IsAllocated(2));
}

TEST(GsiTableTest, FreeOutOfRangeFailsAndChangesNothing) {
  GsiTable t = MustCreate(16);
  ASSERT_TRUE(t.Allocate().has_value());
  const Counters before = CountersOf(t);
  for (Gsi gsi : {16u, 17u, 0xFFFFFFFFu}) {
    auto status = t.Free(gsi);
    ASSERT_FALSE(status.has_value()) << gsi;
    EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument) << gsi;
    EXPECT_EQ(CountersOf(t), before);
  }
}

TEST(GsiTableTest, DoubleFreeIsAlreadyReleasedAndChangesNothing) {
  GsiTable t = MustCreate(16);
  const Gsi a = t.Allocate().value();
  const Gsi b = t.Allocate().value();
  ASSERT_TRUE(t.Free(a).has_value());
  const Counters before = CountersOf(t);
  auto again = t.Free(a);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(CountersOf(t), before);
  EXPECT_TRUE(t.IsAllocated(b));

  // A free GSI that was never allocated is also "already released".
  auto never = t.Free(10);
  ASSERT_FALSE(never.has_value());
  EXPECT_EQ(never.error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(CountersOf(t), before);

  // The double free did not put `a` on the free stack twice: it is handed out once only.
  EXPECT_EQ(t.Allocate().value(), a);
  EXPECT_NE(t.Allocate().value(), a);
}

TEST(GsiTableTest, FreedGsiIsHandedOutNext) {
  GsiTable t = MustCreate(16);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(t.Allocate().has_value());
  ASSERT_TRUE(t.Free(7).has_value());
  EXPECT_FALSE(t.IsAllocated(7));
  EXPECT_EQ(CountersOf(t), (Counters{9, 7, 0}));
  EXPECT_EQ(t.Allocate().value(), 7u);
  EXPECT_TRUE(t.IsAllocated(7));

  ASSERT_TRUE(t.Free(3).has_value());
  ASSERT_TRUE(t.Free(5).has_value());
  EXPECT_EQ(t.Allocate().value(), 5u);  // last freed first
  EXPECT_EQ(t.Allocate().value(), 3u);
  EXPECT_EQ(t.Allocate().value(), 10u);  // then the untouched ones, lowest first
}

TEST(GsiTableTest, CountersMatchASetModelThroughRandomOperations) {
  constexpr uint32_t kCapacity = 200;
  constexpr uint32_t kReservedFirst = 40, kReservedCount = 24;
  GsiTable t = MustCreate(kCapacity);
  ASSERT_TRUE(t.Reserve(kReservedFirst, kReservedCount).has_value());

  std::set<Gsi> allocated;  // the model
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> coin(0, 99);
  for (int step = 0; step < 20000; ++step) {
    const bool allocate = allocated.empty() || coin(rng) < 55;
    if (allocate) {
      auto gsi = t.Allocate();
      if (allocated.size() == kCapacity - kReservedCount) {
        ASSERT_FALSE(gsi.has_value()) << "step " << step;
        ASSERT_EQ(gsi.error().code, ErrorCode::kExhausted);
      } else {
        ASSERT_TRUE(gsi.has_value()) << "step " << step;
        ASSERT_LT(*gsi, kCapacity);
        ASSERT_FALSE(*gsi >= kReservedFirst && *gsi < kReservedFirst + kReservedCount)
            << "reserved GSI " << *gsi << " handed out at step " << step;
        ASSERT_TRUE(allocated.insert(*gsi).second) << "GSI " << *gsi << " handed out twice";
      }
    } else if (coin(rng) < 10) {
      // An invalid free: a free GSI (double free) or a reserved one. Must change nothing.
      const Gsi gsi = std::uniform_int_distribution<Gsi>(0, kCapacity - 1)(rng);
      if (!allocated.contains(gsi)) {
        auto status = t.Free(gsi);
        ASSERT_FALSE(status.has_value()) << gsi;
        const bool reserved = gsi >= kReservedFirst && gsi < kReservedFirst + kReservedCount;
        ASSERT_EQ(status.error().code,
                  reserved ? ErrorCode::kInvalidArgument : ErrorCode::kAlreadyReleased)
            << gsi;
      }
    } else {
      auto it = allocated.begin();
      std::advance(it, std::uniform_int_distribution<size_t>(0, allocated.size() - 1)(rng));
      ASSERT_TRUE(t.Free(*it).has_value()) << "step " << step;
      allocated.erase(it);
    }
    ASSERT_EQ(t.allocated(), allocated.size()) << "step " << step;
    ASSERT_EQ(t.reserved(), kReservedCount) << "step " << step;
    ASSERT_EQ(t.available(), kCapacity - kReservedCount - allocated.size()) << "step " << step;
  }
  for (Gsi g = 0; g < kCapacity; ++g) {
    EXPECT_EQ(t.IsAllocated(g), allocated.contains(g)) << g;
    EXPECT_EQ(t.IsReserved(g), g >= kReservedFirst && g < kReservedFirst + kReservedCount) << g;
  }
}

}  // namespace
}  // namespace virt
