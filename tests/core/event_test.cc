// Checks Event (eventfd): signal/wait counting and coalescing, timeouts, cross-thread wake-up, move-only ownership, no fd leak.
#include "virt/event.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace virt {
namespace {

using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible_v<Event>);
static_assert(!std::is_copy_assignable_v<Event>);
static_assert(std::is_nothrow_move_constructible_v<Event>);
static_assert(std::is_nothrow_move_assignable_v<Event>);
static_assert(std::is_nothrow_destructible_v<Event>);

Event MustCreate() {
  auto event = Event::Create();
  EXPECT_TRUE(event.has_value()) << (event ? "" : event.error().Message());
  return event ? std::move(event).value() : Event();
}

size_t OpenFdCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST(EventTest, CreateGivesAValidEventWithNothingPending) {
  Event event = MustCreate();
  EXPECT_TRUE(event.valid());
  EXPECT_GE(event.native_handle(), 0);
  auto pending = event.TryWait();
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(*pending, 0u);
}

TEST(EventTest, TwoEventsHaveDistinctHandles) {
  Event a = MustCreate();
  Event b = MustCreate();
  EXPECT_NE(a.native_handle(), b.native_handle());
  ASSERT_TRUE(a.Signal().has_value());
  EXPECT_EQ(b.TryWait().value_or(99), 0u);
  EXPECT_EQ(a.TryWait().value_or(0), 1u);
}

TEST(EventTest, SignalThenTryWaitReturnsTheCount) {
  Event event = MustCreate();
  ASSERT_TRUE(event.Signal().has_value());
  EXPECT_EQ(event.TryWait().value_or(0), 1u);

  ASSERT_TRUE(event.Signal(42).has_value());
  EXPECT_EQ(event.TryWait().value_or(0), 42u);
  EXPECT_EQ(event.TryWait().value_or(99), 0u);
}

TEST(EventTest, SignalsCoalesceIntoOneDrain) {
  Event event = MustCreate();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(event.Signal(1).has_value());
  EXPECT_EQ(event.TryWait().value_or(0), 3u);
  EXPECT_EQ(event.TryWait().value_or(99), 0u);

  ASSERT_TRUE(event.Signal(2).has_value());
  ASSERT_TRUE(event.Signal(5).has_value());
  EXPECT_EQ(event.Wait(0ms).value_or(0), 7u);  // Wait drains the whole counter too
  EXPECT_EQ(event.TryWait().value_or(99), 0u);
}

TEST(EventTest, WaitReturnsPendingCountImmediately) {
  Event event = MustCreate();
  ASSERT_TRUE(event.Signal(4).has_value());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(event.Wait(5s).value_or(0), 4u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(EventTest, WaitTimesOutWithZeroWhenNothingIsSignalled) {
  Event event = MustCreate();
  auto waited = event.Wait(10ms);
  ASSERT_TRUE(waited.has_value()) << waited.error().Message();
  EXPECT_EQ(*waited, 0u);
}

// A timed-out Wait must have waited the whole timeout, even for timeouts near the
// millisecond resolution of poll(2).
TEST(EventTest, WaitDoesNotTimeOutEarly) {
  Event event = MustCreate();
  for (auto timeout : {1ms, 2ms, 10ms}) {
    const auto start = std::chrono::steady_clock::now();
    auto waited = event.Wait(timeout);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(waited.has_value());
    EXPECT_EQ(*waited, 0u);
    EXPECT_GE(elapsed, timeout) << "Wait(" << timeout.count() << "ms) returned after "
                                << std::chrono::duration<double, std::milli>(elapsed).count()
                                << "ms";
  }
}

TEST(EventTest, WaitWakesWhenAnotherThreadSignals) {
  Event event = MustCreate();
  std::thread signaller([&event] { EXPECT_TRUE(event.Signal().has_value()); });
  auto waited = event.Wait(5s);
  signaller.join();
  ASSERT_TRUE(waited.has_value()) << waited.error().Message();
  EXPECT_GE(*waited, 1u);
}

TEST(EventTest, ManySignalsFromAnotherThreadAreAllCounted) {
  constexpr uint64_t kSignals = 1000;
  Event event = MustCreate();
  std::thread signaller([&event] {
    for (uint64_t i = 0; i < kSignals; ++i) EXPECT_TRUE(event.Signal().has_value());
  });
  uint64_t total = 0;
  while (total < kSignals) {
    auto waited = event.Wait(5s);
    ASSERT_TRUE(waited.has_value());
    ASSERT_GT(*waited, 0u) << "timed out after " << total << " of " << kSignals;
    total += *waited;
  }
  signaller.join();
  EXPECT_EQ(total, kSignals);
  EXPECT_EQ(event.TryWait().value_or(99), 0u);
}

TEST(EventTest, SignalZeroIsInvalid) {
  Event event = MustCreate();
  auto status = event.Signal(0);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(event.TryWait().value_or(99), 0u);
}

TEST(EventTest, SignalOfTheMaximumCountIsRefusedByTheKernel) {
  Event event = MustCreate();
  // eventfd refuses 0xFFFFFFFFFFFFFFFF outright.
  auto status = event.Signal(UINT64_MAX);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kNative);
  EXPECT_EQ(status.error().domain, NativeDomain::kErrno);
}

TEST(EventTest, MoveConstructionTransfersTheHandle) {
  Event a = MustCreate();
  const Event::NativeHandle fd = a.native_handle();
  Event b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): testing the moved-from state
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(b.native_handle(), fd);
  ASSERT_TRUE(b.Signal(3).has_value());
  EXPECT_EQ(b.TryWait().value_or(0), 3u);
}

TEST(EventTest, MoveAssignmentTransfersTheHandleAndClosesTheOldOne) {
  Event a = MustCreate();
  Event b = MustCreate();
  const Event::NativeHandle fd_a = a.native_handle();
  ASSERT_TRUE(a.Signal(2).has_value());  // pending state travels with the handle
  const size_t fds_before = OpenFdCount();
  b = std::move(a);
  EXPECT_EQ(OpenFdCount(), fds_before - 1) << "b's old eventfd was not closed";
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.native_handle(), fd_a);
  EXPECT_EQ(b.TryWait().value_or(0), 2u);

  // Self-move leaves the event usable.
  Event& alias = b;
  b = std::move(alias);
  EXPECT_TRUE(b.valid());
  EXPECT_EQ(b.native_handle(), fd_a);
}

TEST(EventTest, MovedFromAndDefaultEventsFailWithFailedPrecondition) {
  Event a = MustCreate();
  Event b(std::move(a));
  Event empty;
  EXPECT_FALSE(empty.valid());
  for (const Event* e : {&a, &empty}) {
    auto signalled = e->Signal();
    ASSERT_FALSE(signalled.has_value());
    EXPECT_EQ(signalled.error().code, ErrorCode::kFailedPrecondition);
    auto tried = e->TryWait();
    ASSERT_FALSE(tried.has_value());
    EXPECT_EQ(tried.error().code, ErrorCode::kFailedPrecondition);
    auto waited = e->Wait(1ms);
    ASSERT_FALSE(waited.has_value());
    EXPECT_EQ(waited.error().code, ErrorCode::kFailedPrecondition);
  }
}

TEST(EventTest, CreatingAndDestroyingEventsLeaksNoDescriptors) {
  const size_t before = OpenFdCount();
  {
    std::vector<Event> events;
    for (int i = 0; i < 100; ++i) events.push_back(MustCreate());
    EXPECT_EQ(OpenFdCount(), before + 100);
    // Moving them around (vector growth, move-assignment) must not leak either.
    std::vector<Event> moved;
    for (Event& e : events) moved.push_back(std::move(e));
    events.clear();
    EXPECT_EQ(OpenFdCount(), before + 100);
  }
  EXPECT_EQ(OpenFdCount(), before);
}

}  // namespace
}  // namespace virt
