// Bus: claiming ranges, lookups at the edges, all-ones for unclaimed reads, the counters.
#include "virt_run/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace virt::run {
namespace {

// Records accesses; reads answer offset-numbered bytes.
class Recorder : public Device {
 public:
  Status Read(uint64_t offset, std::span<uint8_t> data) override {
    reads.push_back({offset, data.size()});
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0x10 + offset + i);
    return Ok();
  }
  Status Write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
    return Ok();
  }
  std::vector<std::pair<uint64_t, size_t>> reads;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes;
};

TEST(BusTest, OverlapsAndEmptyRangesAreRefusedAndLeaveTheBusAsItWas) {
  Bus bus;
  Recorder a, b;
  ASSERT_TRUE(bus.Insert(0x100, 8, &a, "a"));
  auto overlap = bus.Insert(0x107, 2, &b, "b");
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().code, ErrorCode::kOverlap);
  EXPECT_NE(overlap.error().detail.find("overlaps a"), std::string::npos);
  EXPECT_FALSE(bus.Insert(0xff, 2, &b, "b"));
  EXPECT_EQ(bus.Insert(0x200, 0, &b, "b").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.Insert(~uint64_t{0}, 2, &b, "b").error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(bus.Insert(0xf8, 8, &b, "b"));   // right below
  ASSERT_TRUE(bus.Insert(0x108, 1, &b, "c"));  // right above
  EXPECT_EQ(bus.Claimant(0xf7), std::nullopt);
  EXPECT_EQ(bus.Claimant(0xff), "b");
  EXPECT_EQ(bus.Claimant(0x100), "a");
  EXPECT_EQ(bus.Claimant(0x107), "a");
  EXPECT_EQ(bus.Claimant(0x108), "c");
  EXPECT_EQ(bus.Claimant(0x109), std::nullopt);
}

TEST(BusTest, UnclaimedReadsAreAllOnesAndWritesAreDroppedAndCounted) {
  Bus bus;
  Recorder a;
  ASSERT_TRUE(bus.Insert(0x100, 4, &a, "a"));
  uint8_t data[4] = {1, 2, 3, 4};
  ASSERT_TRUE(bus.Read(0x50, data));
  EXPECT_EQ(data[0], 0xff);
  EXPECT_EQ(data[3], 0xff);
  ASSERT_TRUE(bus.Write(0x50, data));
  ASSERT_TRUE(bus.Write(0x104, data));
  EXPECT_EQ(bus.counters().unclaimed_reads, 1u);
  EXPECT_EQ(bus.counters().unclaimed_writes, 2u);
  EXPECT_TRUE(a.writes.empty());
}

TEST(BusTest, DeviceSeesItsOffsetAndOnlyTheBytesInsideItsRange) {
  Bus bus;
  Recorder a;
  ASSERT_TRUE(bus.Insert(0x100, 4, &a, "a"));
  uint8_t data[4];
  ASSERT_TRUE(bus.Read(0x102, data));  // two bytes inside, two past the end
  ASSERT_EQ(a.reads.size(), 1u);
  EXPECT_EQ(a.reads[0], (std::pair<uint64_t, size_t>{2, 2}));
  EXPECT_EQ(data[0], 0x12);
  EXPECT_EQ(data[1], 0x13);
  EXPECT_EQ(data[2], 0xff);
  EXPECT_EQ(data[3], 0xff);
  const uint8_t w[4] = {9, 8, 7, 6};
  ASSERT_TRUE(bus.Write(0x103, w));
  ASSERT_EQ(a.writes.size(), 1u);
  EXPECT_EQ(a.writes[0].first, 3u);
  EXPECT_EQ(a.writes[0].second, std::vector<uint8_t>{9});
  EXPECT_EQ(bus.counters().unclaimed_reads, 0u);
}

TEST(BusTest, DeviceErrorsReachTheCaller) {
  struct Failing : Device {
    Status Read(uint64_t, std::span<uint8_t>) override { return Error::Errno("X", 5); }
    Status Write(uint64_t, std::span<const uint8_t>) override { return Error::Errno("Y", 6); }
  } failing;
  Bus bus;
  ASSERT_TRUE(bus.Insert(0, 1, &failing, "f"));
  uint8_t b = 0;
  EXPECT_EQ(bus.Read(0, {&b, 1}).error().native_code, 5);
  EXPECT_EQ(bus.Write(0, {&b, 1}).error().native_code, 6);
}

}  // namespace
}  // namespace virt::run
