// LevelIrqDevice against a fake IrqLines: binding, the condition, re-signalling on resample
// while the condition holds, rebinding, and a clean stop.
#include "virt_run/level_irq_device.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "fake_backend.h"

namespace virt::run {
namespace {

using namespace std::chrono_literals;
using testing::FakeIrqLines;

void Out(LevelIrqDevice& dev, uint64_t offset, uint8_t value) {
  ASSERT_TRUE(dev.Write(offset, {&value, 1}));
}
uint8_t InCount(LevelIrqDevice& dev) {
  uint8_t v = 0;
  EXPECT_TRUE(dev.Read(2, {&v, 1}));
  return v;
}
// Waits (on the device's own answer, with a deadline) until it has seen `n` resamples.
bool WaitForCount(LevelIrqDevice& dev, uint8_t n) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (InCount(dev) != n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class LevelIrqDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dev = LevelIrqDevice::Create(lines_, [this](const Error& e) { errors_.push_back(e); });
    ASSERT_TRUE(dev) << dev.error().Message();
    dev_ = std::move(*dev);
  }
  FakeIrqLines::Route& Route(size_t i) { return *lines_.routes.at(i); }

  FakeIrqLines lines_;
  std::vector<Error> errors_;
  std::unique_ptr<LevelIrqDevice> dev_;
};

TEST_F(LevelIrqDeviceTest, BindMakesALevelResampleRouteOnTheLine) {
  Out(*dev_, 0, 10);
  ASSERT_EQ(lines_.routes.size(), 1u);
  EXPECT_EQ(Route(0).line(), 10u);
  EXPECT_EQ(Route(0).trigger(), LineTrigger::kLevelResample);
  ASSERT_NE(Route(0).resample_event(), nullptr);
  // The condition starts clear: nothing was signalled.
  EXPECT_EQ(*Route(0).event().TryWait(), 0u);
}

TEST_F(LevelIrqDeviceTest, SetSignalsAndResampleResignalsUntilAcked) {
  Out(*dev_, 0, 3);
  Out(*dev_, 1, 1);  // assert
  EXPECT_EQ(*Route(0).event().TryWait(), 1u);

  // The guest EOIs without acking: the kernel's resample, then the device asserts again.
  ASSERT_TRUE(Route(0).resample_event()->Signal());
  EXPECT_EQ(*Route(0).event().Wait(10s), 1u);
  EXPECT_TRUE(WaitForCount(*dev_, 1));

  // Ack, then EOI: counted, and no new signal.
  Out(*dev_, 1, 0);
  ASSERT_TRUE(Route(0).resample_event()->Signal());
  EXPECT_TRUE(WaitForCount(*dev_, 2));
  EXPECT_EQ(*Route(0).event().TryWait(), 0u);  // the count moved under the lock: decided
  EXPECT_TRUE(errors_.empty());
}

TEST_F(LevelIrqDeviceTest, RebindingReplacesTheRouteAndClearsTheCondition) {
  Out(*dev_, 0, 4);
  Out(*dev_, 1, 1);
  EXPECT_EQ(*Route(0).event().TryWait(), 1u);
  Out(*dev_, 0, 7);
  ASSERT_EQ(lines_.routes.size(), 2u);
  {
    std::lock_guard lock(lines_.mu);
    EXPECT_EQ(lines_.routes_destroyed, 1);  // the old one is gone
  }
  EXPECT_EQ(Route(1).line(), 7u);
  ASSERT_TRUE(Route(1).resample_event()->Signal());
  EXPECT_TRUE(WaitForCount(*dev_, 1));
  EXPECT_EQ(*Route(1).event().TryWait(), 0u);  // the condition did not carry over
}

TEST_F(LevelIrqDeviceTest, LineOutOfRangeIsIgnored) {
  Out(*dev_, 0, 24);
  EXPECT_TRUE(lines_.routes.empty());
  Out(*dev_, 1, 1);  // no route: just the condition
  EXPECT_EQ(InCount(*dev_), 0);
}

TEST_F(LevelIrqDeviceTest, StopEndsTheThreadAndDetachesTheRoute) {
  Out(*dev_, 0, 2);
  dev_->Stop();
  {
    std::lock_guard lock(lines_.mu);
    EXPECT_EQ(lines_.routes_destroyed, 1);
  }
  dev_->Stop();  // idempotent
  Out(*dev_, 0, 5);  // after Stop: ignored
  EXPECT_EQ(lines_.routes.size(), 1u);
  dev_.reset();
}

TEST_F(LevelIrqDeviceTest, DestroyingWithoutStopJoinsToo) {
  Out(*dev_, 0, 2);
  Out(*dev_, 1, 1);
  dev_.reset();
  std::lock_guard lock(lines_.mu);
  EXPECT_EQ(lines_.routes_destroyed, 1);
}

TEST_F(LevelIrqDeviceTest, CountWrapsAt256) {
  Out(*dev_, 0, 1);
  for (int i = 1; i <= 257; ++i) {
    ASSERT_TRUE(Route(0).resample_event()->Signal());
    ASSERT_TRUE(WaitForCount(*dev_, static_cast<uint8_t>(i))) << i;
  }
  EXPECT_EQ(InCount(*dev_), 1);
}

}  // namespace
}  // namespace virt::run
