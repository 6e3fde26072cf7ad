// WhpTriggerIrqFd under concurrency: signallers racing mask/unmask/retarget, and many routes
// changing at once; every signal delivered once (or coalesced at an unmask), none while masked.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "whp_irqfd_fixture.h"

namespace virt::whp::test {
namespace {

constexpr int kSignallers = 4;
constexpr int kSignalsEach = 1000;

MsiMessage WithVector(uint32_t vector) {
  return MsiMessage::Fixed(0, static_cast<uint8_t>(vector));
}

// Delivery indices the controller saw around its calls in one mask/unmask cycle.
struct Cycle {
  uint32_t unmask_vector = 0;    // SetMsi from masked
  uint32_t retarget_vector = 0;  // SetMsi while enabled
  size_t before_unmask = 0;
  size_t before_retarget = 0;
  size_t after_retarget = 0;
  size_t after_mask = 0;
};

TEST_F(WhpIrqFdTest, SignalsRacingMaskUnmaskAndRetargetAreDeliveredOnceAndNeverWhileMasked) {
  auto route = NewRoute();
  std::atomic<bool> go{false};
  std::atomic<int> done{0};
  std::atomic<int> failed_signals{0};
  std::vector<std::thread> signallers;
  for (int t = 0; t < kSignallers; ++t) {
    signallers.emplace_back([&] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kSignalsEach; ++i) {
        if (!route->event().Signal()) failed_signals.fetch_add(1);
      }
      done.fetch_add(1, std::memory_order_release);
    });
  }

  // The controller: unmask to a new vector, retarget, mask; again until the signallers finish.
  std::vector<Cycle> cycles;
  go.store(true, std::memory_order_release);
  for (uint32_t i = 0; done.load(std::memory_order_acquire) < kSignallers; ++i) {
    Cycle c;
    c.unmask_vector = 0x20 + (2 * i) % 0xC0;
    c.retarget_vector = c.unmask_vector + 1;
    c.before_unmask = Delivered();
    ASSERT_TRUE(route->SetMsi(WithVector(c.unmask_vector)));
    c.before_retarget = Delivered();
    ASSERT_TRUE(route->SetMsi(WithVector(c.retarget_vector)));
    c.after_retarget = Delivered();
    ASSERT_TRUE(route->ClearMsi());
    c.after_mask = Delivered();
    cycles.push_back(c);
  }
  for (std::thread& t : signallers) t.join();
  const size_t before_final = Delivered();
  ASSERT_TRUE(route->SetMsi(WithVector(0xF0)));  // hands over whatever the last mask held
  EXPECT_EQ(*route->event().TryWait(), 0u) << "a signal was left behind";

  EXPECT_EQ(failed_signals.load(), 0);
  const auto delivered = fake_.delivered();
  const size_t signals = size_t{kSignallers} * kSignalsEach;
  EXPECT_LE(delivered.size(), signals) << "a signal was delivered twice";
  EXPECT_GE(delivered.size(), 1u);
  // Each cycle: nothing between the mask and the next unmask, and every delivery carries the
  // MSI of its time (the retarget's window may see either, old before new).
  for (size_t i = 0; i < cycles.size(); ++i) {
    SCOPED_TRACE("cycle " + std::to_string(i));
    const Cycle& c = cycles[i];
    const size_t next_unmask = i + 1 < cycles.size() ? cycles[i + 1].before_unmask : before_final;
    EXPECT_EQ(next_unmask, c.after_mask) << "delivered while masked";
    for (size_t d = c.before_unmask; d < c.before_retarget; ++d) {
      EXPECT_EQ(delivered[d].Vector, c.unmask_vector) << "delivery " << d;
    }
    bool retargeted = false;
    for (size_t d = c.before_retarget; d < c.after_retarget; ++d) {
      retargeted = retargeted || delivered[d].Vector == c.retarget_vector;
      EXPECT_EQ(delivered[d].Vector, retargeted ? c.retarget_vector : c.unmask_vector);
    }
    for (size_t d = c.after_retarget; d < c.after_mask; ++d) {
      EXPECT_EQ(delivered[d].Vector, c.retarget_vector) << "delivery " << d;
    }
    if (HasFailure()) return;
  }
  for (size_t d = before_final; d < delivered.size(); ++d) EXPECT_EQ(delivered[d].Vector, 0xF0u);
}

TEST_F(WhpIrqFdTest, ManyRoutesChangingAtOnceDeliverEverySignalExactlyOnce) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 40;
  constexpr int kSignalsPerRound = 5;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        auto route = irqfd_->NewRoute();
        if (!route) {
          failures.fetch_add(1);
          continue;
        }
        IrqFdRoute& r = **route;
        bool ok = r.SetMsi(WithVector(0x30 + t)).has_value();
        for (int s = 0; s < kSignalsPerRound; ++s) ok = ok && r.event().Signal().has_value();
        ok = ok && r.SetMsi(WithVector(0x40 + t)).has_value();
        ok = ok && r.event().Signal().has_value();
        ok = ok && r.ClearMsi().has_value();
        if (round % 2 == 0) {
          ok = ok && r.Release().has_value();
        }  // odd rounds: the destructor tears it down
        if (!ok) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // No masking while signalling here, so nothing coalesces: one delivery per signal.
  const auto delivered = fake_.delivered();
  EXPECT_EQ(delivered.size(), size_t{kThreads} * kRounds * (kSignalsPerRound + 1));
  for (int t = 0; t < kThreads; ++t) {
    size_t first = 0;
    size_t second = 0;
    for (const WHV_INTERRUPT_CONTROL& c : delivered) {
      first += c.Vector == 0x30u + t;
      second += c.Vector == 0x40u + t;
    }
    EXPECT_EQ(first, size_t{kRounds} * kSignalsPerRound) << "thread " << t;
    EXPECT_EQ(second, size_t{kRounds}) << "thread " << t;
  }
  EXPECT_EQ(irqfd_->allocated_gsis(), 0u);
  EXPECT_TRUE(fake_.triggers().empty());
  EXPECT_TRUE(fake_.open_handles().empty());
}

TEST_F(WhpIrqFdTest, ShutdownRacingSignalsLeavesNothingReachingWhpAfterItReturns) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> signalled{0};
  std::atomic<int> failed{0};
  std::thread signaller([&] {
    while (!stop.load(std::memory_order_acquire)) {
      if (!route->event().Signal()) failed.fetch_add(1);
      signalled.fetch_add(1, std::memory_order_release);
    }
  });
  while (signalled.load(std::memory_order_acquire) < 100) std::this_thread::yield();
  irqfd_->Shutdown();
  // Shutdown waited for a SetEvent in flight, so this count is final.
  const size_t at_shutdown = Delivered();
  const uint64_t signalled_at_shutdown = signalled.load(std::memory_order_acquire);
  while (signalled.load(std::memory_order_acquire) < signalled_at_shutdown + 100) {
    std::this_thread::yield();
  }
  stop.store(true, std::memory_order_release);
  signaller.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GE(at_shutdown, 1u);
  EXPECT_EQ(Delivered(), at_shutdown) << "a signal reached WHP after Shutdown";
  // The ones after Shutdown counted on the route's own event instead.
  EXPECT_GE(*route->event().TryWait(), 99u);
  ASSERT_TRUE(fake_.api()->DeletePartition(partition_));
  partition_deleted_ = true;
}

}  // namespace
}  // namespace virt::whp::test
