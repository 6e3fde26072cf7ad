// Checks Event (eventfd; event object + counter on Windows): signal/wait counting and coalescing, timeouts, cross-thread wake-up, move-only ownership, no fd/handle leak.
#include "virt/event.h"

#include <gtest/gtest.h>

#ifdef _WIN32
#include <windows.h>
#endif

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

#ifdef _WIN32
// Whether `handle` is an open handle of this process. (Wine's GetProcessHandleCount is a stub
// that reports 0, so leaks are checked handle by handle; nothing else in these tests opens
// handles meanwhile, so a closed value is not reused under our feet.)
bool HandleIsOpen(HANDLE handle) {
  DWORD flags = 0;
  return ::GetHandleInformation(handle, &flags) != 0;
}
#else
size_t OpenFdCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}
#endif

TEST(EventTest, CreateGivesAValidEventWithNothingPending) {
  Event event = MustCreate();
  EXPECT_TRUE(event.valid());
#ifdef _WIN32
  EXPECT_NE(event.native_handle(), nullptr);
#else
  EXPECT_GE(event.native_handle(), 0);
#endif
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

#ifdef _WIN32
// Windows keeps eventfd's limits: UINT64_MAX is refused outright, and the counter never passes
// 0xFFFFFFFFFFFFFFFE (a signal that would overflow it fails and leaves it unchanged).
TEST(EventTest, SignalOfTheMaximumCountIsRefused) {
  Event event = MustCreate();
  auto status = event.Signal(UINT64_MAX);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);

  ASSERT_TRUE(event.Signal(UINT64_MAX - 1).has_value());
  auto overflow = event.Signal(1);
  ASSERT_FALSE(overflow.has_value());
  EXPECT_EQ(overflow.error().code, ErrorCode::kExhausted);
  EXPECT_EQ(event.TryWait().value_or(0), UINT64_MAX - 1);
}

// The HANDLE is signalled exactly while the counter is non-zero, so a wait on native_handle()
// (WaitForSingleObject, a poller) sees what Wait/TryWait see.
TEST(EventTest, NativeHandleIsSignalledWhileTheCounterIsNonZero) {
  Event event = MustCreate();
  HANDLE handle = event.native_handle();
  EXPECT_EQ(::WaitForSingleObject(handle, 0), WAIT_TIMEOUT);
  ASSERT_TRUE(event.Signal(2).has_value());
  EXPECT_EQ(::WaitForSingleObject(handle, 0), WAIT_OBJECT_0);
  EXPECT_EQ(::WaitForSingleObject(handle, 0), WAIT_OBJECT_0) << "a wait must not consume it";
  EXPECT_EQ(event.TryWait().value_or(0), 2u);
  EXPECT_EQ(::WaitForSingleObject(handle, 0), WAIT_TIMEOUT);
  ASSERT_TRUE(event.Signal().has_value());
  EXPECT_EQ(event.Wait(0ms).value_or(0), 1u);
  EXPECT_EQ(::WaitForSingleObject(handle, 0), WAIT_TIMEOUT);
}

// Someone else signalling the handle itself (WHP sets a doorbell's event with SetEvent) is one
// signal, as a write of 1 to an eventfd is; it coalesces with the counter's own signals.
TEST(EventTest, ASetEventStraightOnTheHandleCountsAsOneSignal) {
  Event event = MustCreate();
  ASSERT_TRUE(::SetEvent(event.native_handle()));
  ASSERT_TRUE(::SetEvent(event.native_handle()));
  EXPECT_EQ(event.TryWait().value_or(0), 1u);
  EXPECT_EQ(event.TryWait().value_or(9), 0u);
  EXPECT_EQ(::WaitForSingleObject(event.native_handle(), 0), WAIT_TIMEOUT);
  ASSERT_TRUE(::SetEvent(event.native_handle()));
  EXPECT_EQ(event.Wait(1000ms).value_or(0), 1u);
  ASSERT_TRUE(::SetEvent(event.native_handle()));
  ASSERT_TRUE(event.Signal(3).has_value());
  EXPECT_EQ(event.TryWait().value_or(0), 4u);
  EXPECT_EQ(event.TryWait().value_or(9), 0u);
}
#else
TEST(EventTest, SignalOfTheMaximumCountIsRefusedByTheKernel) {
  Event event = MustCreate();
  // eventfd refuses 0xFFFFFFFFFFFFFFFF outright.
  auto status = event.Signal(UINT64_MAX);
  ASSERT_FALSE(status.has_value());
  EXPECT_EQ(status.error().code, ErrorCode::kNative);
  EXPECT_EQ(status.error().domain, NativeDomain::kErrno);
}
#endif

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
#ifdef _WIN32
  const Event::NativeHandle old_b = b.native_handle();
  ASSERT_TRUE(HandleIsOpen(old_b));
  b = std::move(a);
  EXPECT_FALSE(HandleIsOpen(old_b)) << "b's old event object was not closed";
#else
  const size_t fds_before = OpenFdCount();
  b = std::move(a);
  EXPECT_EQ(OpenFdCount(), fds_before - 1) << "b's old eventfd was not closed";
#endif
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

#ifdef _WIN32
TEST(EventTest, CreatingAndDestroyingEventsLeaksNoHandles) {
  std::vector<Event::NativeHandle> handles;
  {
    std::vector<Event> events;
    for (int i = 0; i < 100; ++i) events.push_back(MustCreate());
    for (const Event& e : events) handles.push_back(e.native_handle());
    // Moving them around (vector growth, move-assignment) must not close or leak any.
    std::vector<Event> moved;
    for (Event& e : events) moved.push_back(std::move(e));
    events.clear();
    for (HANDLE h : handles) EXPECT_TRUE(HandleIsOpen(h));
  }
  for (HANDLE h : handles) EXPECT_FALSE(HandleIsOpen(h)) << "handle " << h << " leaked";
}
#else
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
#endif

}  // namespace
}  // namespace virt
