// Checks WhpPartitionState (reference time with suspended time, routes, what WHP has not) and
// WhpDirtyLog (the exact WHvQueryGpaRangeDirtyBitmap call, read-and-clear, range checks).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"

namespace virt::whp {
namespace {

using test::FakeWhp;
using testing::_;

class WhpPartitionStateTest : public testing::Test {
 protected:
  void Make(bool triggers = false, bool irqchip = true) {
    auto h = WhpHypervisor::Create(fake_.api(), {.use_triggers = triggers});
    ASSERT_TRUE(h.has_value());
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = irqchip});
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
    ASSERT_NE(partition_->state(), nullptr);
  }
  PartitionStateControl& state() { return *partition_->state(); }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
};

TEST_F(WhpPartitionStateTest, TheUserModeIrqFdsRoutesAreSavedWithTheClock) {
  Make(/*triggers=*/false);
  const auto parts = state().supported_parts();
  EXPECT_EQ(std::vector<PartitionStatePart>(parts.begin(), parts.end()),
            (std::vector<PartitionStatePart>{PartitionStatePart::kClock,
                                             PartitionStatePart::kRoutes}));
}

TEST_F(WhpPartitionStateTest, TriggerRoutesAreSavedToo) {
  Make(/*triggers=*/true);
  const auto parts = state().supported_parts();
  EXPECT_EQ(std::vector<PartitionStatePart>(parts.begin(), parts.end()),
            (std::vector<PartitionStatePart>{PartitionStatePart::kClock,
                                             PartitionStatePart::kRoutes}));
}

TEST_F(WhpPartitionStateTest, WithoutIrqchipThereAreNoRoutesToSave) {
  Make(/*triggers=*/true, /*irqchip=*/false);
  const auto parts = state().supported_parts();
  EXPECT_EQ(std::vector<PartitionStatePart>(parts.begin(), parts.end()),
            std::vector<PartitionStatePart>{PartitionStatePart::kClock});
  const PartitionStatePart routes[] = {PartitionStatePart::kRoutes};
  auto saved = state().SaveState(routes);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(saved.error().Message().find("irqchip"), std::string::npos)
      << saved.error().Message();
}

TEST_F(WhpPartitionStateTest, TheMissingDevicesAreUnavailableByName) {
  Make(/*triggers=*/true);
  for (auto [part, word] : {std::pair{PartitionStatePart::kIrqchip, "IOAPIC"},
                            std::pair{PartitionStatePart::kPit, "PIT"}}) {
    const PartitionStatePart one[] = {part};
    auto saved = state().SaveState(one);
    ASSERT_FALSE(saved.has_value());
    EXPECT_EQ(saved.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(saved.error().Message().find(word), std::string::npos) << saved.error().Message();
  }
  PartitionState pit;
  pit.backend = "whp";
  pit.pit = std::vector<uint8_t>(112, 0);
  fake_.ClearLog();
  auto r = state().RestoreState(pit);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(fake_.log().empty());
}

TEST_F(WhpPartitionStateTest, TheClockIsTheReferenceTimeInHundredNanosecondTicks) {
  Make();
  fake_.set_reference_time(123456789);
  EXPECT_CALL(fake_.mock(),
              GetPartitionProperty(_, WHvPartitionPropertyCodeReferenceTime, _, 8u, _));
  const PartitionStatePart clock[] = {PartitionStatePart::kClock};
  auto saved = state().SaveState(clock);
  ASSERT_TRUE(saved.has_value()) << saved.error().Message();
  EXPECT_EQ(saved->clock->ns, 12345678900u);
  EXPECT_EQ(saved->clock->flags, 0u);
}

TEST_F(WhpPartitionStateTest, RestoringTheClockWritesItWhileTimeIsSuspended) {
  Make();
  PartitionState s;
  s.backend = "whp";
  s.clock = ClockState{5'000'000'050, 0};
  fake_.ClearLog();
  auto r = state().RestoreState(s);
  ASSERT_TRUE(r.has_value()) << r.error().Message();
  EXPECT_EQ(fake_.log(), (std::vector<std::string>{"SuspendPartitionTime",
                                                   "SetPartitionProperty(0x100b)",
                                                   "ResumePartitionTime"}));
  const std::vector<uint8_t> written = fake_.properties().at(0x100B);
  ASSERT_EQ(written.size(), 8u);
  uint64_t ticks = 0;
  std::memcpy(&ticks, written.data(), 8);
  EXPECT_EQ(ticks, 50'000'000u);
  EXPECT_FALSE(fake_.time_suspended());
}

TEST_F(WhpPartitionStateTest, AFailedWriteStillResumesTime) {
  Make();
  PartitionState s;
  s.backend = "whp";
  s.clock = ClockState{100, 0};
  fake_.FailNext("SetPartitionProperty", kHrAccessDenied);
  auto r = state().RestoreState(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().Message().find("restoring clock"), std::string::npos);
  EXPECT_EQ(fake_.CountCalls("ResumePartitionTime"), 1);
  EXPECT_FALSE(fake_.time_suspended());
}

TEST_F(WhpPartitionStateTest, AFailedSuspendWritesNothing) {
  Make();
  PartitionState s;
  s.backend = "whp";
  s.clock = ClockState{100, 0};
  fake_.FailNext("SuspendPartitionTime", kHrAccessDenied);
  fake_.ClearLog();
  auto r = state().RestoreState(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(fake_.log(), std::vector<std::string>{"SuspendPartitionTime"});
}

TEST_F(WhpPartitionStateTest, RoutesComeBackOnTheirGsisInAFreshPartition) {
  Make();
  auto a = partition_->irqfd()->NewRoute();
  auto b = partition_->irqfd()->NewRoute();
  ASSERT_TRUE(a.has_value() && b.has_value());
  ASSERT_TRUE((*a)->SetMsi(MsiMessage::Fixed(0, 0x41)).has_value());
  auto saved = state().SaveState();
  ASSERT_TRUE(saved.has_value()) << saved.error().Message();
  ASSERT_EQ(saved->routes->size(), 2u);
  auto parsed = ParsePartitionState(SerializePartitionState(*saved), "whp");
  ASSERT_TRUE(parsed.has_value());

  FakeWhp other;
  auto h = WhpHypervisor::Create(other.api(), {.use_triggers = false});
  auto p = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(p.has_value());
  auto routes = (*p)->state()->RestoreState(*parsed);
  ASSERT_TRUE(routes.has_value()) << routes.error().Message();
  ASSERT_EQ(routes->size(), 2u);
  EXPECT_EQ((*routes)[0]->gsi(), (*a)->gsi());
  EXPECT_EQ((*routes)[1]->gsi(), (*b)->gsi());
  EXPECT_EQ(*(*p)->irqfd()->Routes(), *saved->routes);
}

TEST_F(WhpPartitionStateTest, AnotherBackendsStateIsRefused) {
  Make();
  PartitionState kvm;
  kvm.backend = "kvm";
  auto r = state().RestoreState(kvm);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

class WhpDirtyLogTest : public WhpPartitionStateTest {
 protected:
  static constexpr uint64_t kBase = 0x100000;
  static constexpr uint64_t kPages = 70;  // more than one word
  void MapTracked() {
    Make();
    ASSERT_NE(partition_->dirty_log(), nullptr);
    ASSERT_TRUE(partition_->dirty_log()->Enable().has_value());
    ASSERT_TRUE(partition_->MapMemory({kBase, kPages * 4096, ram_.data(), MemoryFlags::kDirtyLog})
                    .has_value());
  }
  DirtyLog& log() { return *partition_->dirty_log(); }
  alignas(4096) static inline std::array<uint8_t, kPages * 4096> ram_{};
};

TEST_F(WhpDirtyLogTest, ARegionMappedWithDirtyLogTracksDirtyPages) {
  MapTracked();
  EXPECT_EQ(fake_.mappings().at(kBase).flags, 0xFu);  // Read|Write|Execute|TrackDirtyPages
}

TEST_F(WhpDirtyLogTest, NoTrackingOnTheHostMeansNoDirtyLog) {
  fake_.set_dirty_page_tracking(false);
  Make();
  EXPECT_EQ(partition_->dirty_log(), nullptr);
}

TEST_F(WhpDirtyLogTest, AReadIsOneQueryOfTheRangeAndClearsWhatItReturns) {
  MapTracked();
  for (uint64_t page : {0u, 3u, 64u, 69u}) fake_.MarkDirty(kBase + page * 4096);
  EXPECT_CALL(fake_.mock(), QueryGpaRangeDirtyBitmap(_, kBase, kPages * 4096, _, 16u)).Times(2);
  auto bits = log().ReadAndClear(kBase, kPages * 4096);
  ASSERT_TRUE(bits.has_value()) << bits.error().Message();
  EXPECT_EQ(*bits, (std::vector<uint64_t>{0x9, (uint64_t{1} << 0) | (uint64_t{1} << 5)}));
  fake_.MarkDirty(kBase + 7 * 4096);
  auto second = log().ReadAndClear(kBase, kPages * 4096);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, (std::vector<uint64_t>{0x80, 0}));
}

TEST_F(WhpDirtyLogTest, APieceReadLeavesTheOtherPagesBits) {
  MapTracked();
  fake_.MarkDirty(kBase + 1 * 4096);
  fake_.MarkDirty(kBase + 10 * 4096);
  auto piece = log().ReadAndClear(kBase + 8 * 4096, 4 * 4096);
  ASSERT_TRUE(piece.has_value());
  EXPECT_EQ(*piece, std::vector<uint64_t>{0x4});  // page 10 is bit 2
  EXPECT_EQ(fake_.dirty_pages(), std::set<uint64_t>{kBase / 4096 + 1});
}

TEST_F(WhpDirtyLogTest, BitsPastTheRangeAreMasked) {
  MapTracked();
  EXPECT_CALL(fake_.mock(), QueryGpaRangeDirtyBitmap(_, kBase, 3 * 4096u, _, 8u))
      .WillOnce([](WHV_PARTITION_HANDLE, uint64_t, uint64_t, uint64_t* bitmap, uint32_t) {
        bitmap[0] = ~uint64_t{0};
        return Ok();
      });
  auto bits = log().ReadAndClear(kBase, 3 * 4096);
  ASSERT_TRUE(bits.has_value());
  EXPECT_EQ(*bits, std::vector<uint64_t>{0x7});
}

TEST_F(WhpDirtyLogTest, BadRangesAreRefusedBeforeAnyCall) {
  MapTracked();
  alignas(4096) static uint8_t untracked[4096];
  ASSERT_TRUE(partition_->MapMemory({0x400000, sizeof untracked, untracked}).has_value());
  EXPECT_CALL(fake_.mock(), QueryGpaRangeDirtyBitmap(_, _, _, _, _)).Times(0);
  EXPECT_EQ(log().ReadAndClear(kBase + 1, 4096).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(log().ReadAndClear(kBase, 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(log().ReadAndClear(0x200000000, 4096).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(log().ReadAndClear(kBase, (kPages + 1) * 4096).error().code, ErrorCode::kNotFound);
  auto untracked_read = log().ReadAndClear(0x400000, 4096);
  EXPECT_EQ(untracked_read.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(untracked_read.error().Message().find("kDirtyLog"), std::string::npos);
}

TEST_F(WhpDirtyLogTest, AFailedQueryIsReturned) {
  MapTracked();
  fake_.FailNext("QueryGpaRangeDirtyBitmap", kHrAccessDenied);
  auto bits = log().ReadAndClear(kBase, 4096);
  ASSERT_FALSE(bits.has_value());
  EXPECT_EQ(std::string(bits.error().operation), "WHvQueryGpaRangeDirtyBitmap");
  EXPECT_EQ(bits.error().native_code, int64_t{static_cast<uint32_t>(kHrAccessDenied)});
}

}  // namespace
}  // namespace virt::whp
