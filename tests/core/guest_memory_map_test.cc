// GuestMemoryMap: validation, overlap, slot reuse and the two-phase reserve/commit protocol.
#include "virt/guest_memory_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

namespace virt::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;

void* Host(uint64_t address) { return reinterpret_cast<void*>(address); }

MemoryRegion Region(uint64_t guest, uint64_t size, uint64_t host = 0x7f0000000000) {
  return {guest, size, Host(host), MemoryFlags::kNone};
}

class GuestMemoryMapTest : public ::testing::Test {
 protected:
  // Reserve + commit, as a backend whose ioctl succeeded does.
  uint32_t Map(const MemoryRegion& region) {
    auto m = map_.ReserveMap(region);
    EXPECT_TRUE(m.has_value()) << m.error().Message();
    if (!m) return UINT32_MAX;
    map_.CommitMap(*m);
    return m->slot;
  }

  GuestMemoryMap map_{3, "Test::Map", "Test::Unmap"};
};

TEST_F(GuestMemoryMapTest, RejectsUnalignedEmptyNullAndWrappingRegions) {
  for (const MemoryRegion& bad :
       {Region(0x1001, 4096), Region(0, 100), Region(0, 0), Region(0, 4096, 0x1234),
        MemoryRegion{0, 4096, nullptr, MemoryFlags::kNone},
        Region(UINT64_MAX - 4095, 8192)}) {
    auto m = map_.ReserveMap(bad);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);
    EXPECT_STREQ(m.error().operation, "Test::Map");
  }
  EXPECT_EQ(map_.size(), 0u);
}

TEST_F(GuestMemoryMapTest, ReserveDoesNotChangeTheMapUntilCommit) {
  auto first = map_.ReserveMap(Region(0, kMiB));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->slot, 0u);
  // The backend's ioctl failed: nothing was committed, so the same slot is offered again and
  // the range is still free.
  auto again = map_.ReserveMap(Region(0, kMiB));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(map_.size(), 0u);
  EXPECT_FALSE(map_.FindExact(0, kMiB).has_value());

  map_.CommitMap(*again);
  EXPECT_EQ(map_.size(), 1u);
  auto found = map_.FindExact(0, kMiB);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->slot, 0u);
  EXPECT_EQ(found->host_address, 0x7f0000000000u);
}

TEST_F(GuestMemoryMapTest, DetectsOverlapOnEitherSide) {
  Map(Region(2 * kMiB, kMiB));
  for (const MemoryRegion& r : {Region(2 * kMiB, 4096), Region(kMiB, kMiB + 4096),
                                Region(3 * kMiB - 4096, kMiB), Region(0, 8 * kMiB)}) {
    auto m = map_.ReserveMap(r);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code, ErrorCode::kOverlap);
  }
  // Touching regions do not overlap.
  EXPECT_EQ(Map(Region(kMiB, kMiB)), 1u);
  EXPECT_EQ(Map(Region(3 * kMiB, kMiB)), 2u);
}

TEST_F(GuestMemoryMapTest, ExhaustsAtMaxSlotsAndReusesUnmappedSlotsLastFreedFirst) {
  EXPECT_EQ(Map(Region(0, kMiB)), 0u);
  EXPECT_EQ(Map(Region(kMiB, kMiB)), 1u);
  EXPECT_EQ(Map(Region(2 * kMiB, kMiB)), 2u);
  auto full = map_.ReserveMap(Region(3 * kMiB, kMiB));
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kExhausted);

  for (uint64_t guest : {0 * kMiB, 2 * kMiB}) {
    auto m = map_.FindExact(guest, kMiB);
    ASSERT_TRUE(m.has_value());
    map_.CommitUnmap(*m);
  }
  EXPECT_EQ(Map(Region(5 * kMiB, kMiB)), 2u);
  EXPECT_EQ(Map(Region(6 * kMiB, kMiB)), 0u);
  EXPECT_FALSE(map_.ReserveMap(Region(7 * kMiB, kMiB)).has_value());
}

TEST_F(GuestMemoryMapTest, UnmapNeedsAnExactMatchAndIsTwoPhase) {
  Map(Region(kMiB, 2 * kMiB));
  for (auto [guest, size] : {std::pair{kMiB, kMiB}, {2 * kMiB, kMiB}, {0, 2 * kMiB}}) {
    auto m = map_.FindExact(guest, size);
    ASSERT_FALSE(m.has_value());
    EXPECT_EQ(m.error().code, ErrorCode::kNotFound);
    EXPECT_STREQ(m.error().operation, "Test::Unmap");
  }
  auto m = map_.FindExact(kMiB, 2 * kMiB);
  ASSERT_TRUE(m.has_value());
  // The backend's unmap ioctl failed: the region stays mapped and its range taken.
  EXPECT_EQ(map_.size(), 1u);
  EXPECT_EQ(map_.ReserveMap(Region(kMiB, kMiB)).error().code, ErrorCode::kOverlap);
  map_.CommitUnmap(*m);
  EXPECT_EQ(map_.size(), 0u);
  EXPECT_EQ(Map(Region(kMiB, kMiB)), 0u);
}

TEST_F(GuestMemoryMapTest, FindContainingNeedsOneMappingToHoldTheWholeRange) {
  Map(Region(kMiB, kMiB));
  MemoryRegion tracked = Region(2 * kMiB, kMiB, 0x7f0000200000);
  tracked.flags = MemoryFlags::kDirtyLog;
  Map(tracked);

  auto inside = map_.FindContaining(2 * kMiB + 4096, 8192, "Test::Find");
  ASSERT_TRUE(inside.has_value()) << inside.error().Message();
  EXPECT_EQ(inside->guest_address, 2 * kMiB);
  EXPECT_EQ(inside->flags, MemoryFlags::kDirtyLog);
  EXPECT_EQ(map_.FindContaining(kMiB, kMiB, "Test::Find")->flags, MemoryFlags::kNone);

  // Straddling two adjacent mappings, before the first, past the last, wrapping: not found.
  for (auto [address, size] : {std::pair<uint64_t, uint64_t>{2 * kMiB - 4096, 8192},
                               {0, 4096},
                               {3 * kMiB, 4096},
                               {3 * kMiB - 4096, 8192},
                               {2 * kMiB, UINT64_MAX}}) {
    auto r = map_.FindContaining(address, size, "Test::Find");
    ASSERT_FALSE(r.has_value()) << std::hex << address << "+" << size;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
    EXPECT_STREQ(r.error().operation, "Test::Find");
  }
}

}  // namespace
}  // namespace virt::test
