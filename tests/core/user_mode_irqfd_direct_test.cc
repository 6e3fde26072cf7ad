// Checks UserModeIrqFd's direct signals: Event::Signal injects on the signalling thread, masking, release and shutdown take that path away, native-handle writes still reach the dispatcher.
#include "virt/user_mode_irqfd.h"

#include <gtest/gtest.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <unistd.h>
#endif

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "user_mode_irqfd_fakes.h"

namespace virt {
namespace {

using test::FakeInjector;

// Signals `event` the way a device in another process would: straight to its native handle,
// past Event::Signal (and so past any sink).
void SignalNativeHandle(const Event& event) {
#ifdef _WIN32
  ASSERT_TRUE(::SetEvent(event.native_handle()));
#else
  const uint64_t one = 1;
  ASSERT_EQ(::write(event.native_handle(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
#endif
}

class UserModeIrqFdDirectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto irqfd = UserModeIrqFd::Create(
        [this](const MsiMessage& msi) {
          {
            std::lock_guard lock(threads_mu_);
            threads_.push_back(std::this_thread::get_id());
            if (fail_once_ == msi) {
              fail_once_.reset();
              return Result<bool>(Error::Make(ErrorCode::kNative, "FailOnce", "told to"));
            }
          }
          return injector_.Inject(msi);
        },
        UserModeIrqFd::Options{.direct_signals = true});
    ASSERT_TRUE(irqfd) << irqfd.error().Message();
    irqfd_ = std::move(*irqfd);
  }

  std::unique_ptr<IrqFdRoute> NewEnabledRoute(const MsiMessage& msi) {
    auto route = irqfd_->NewRoute();
    EXPECT_TRUE(route) << route.error().Message();
    if (!route) return nullptr;
    EXPECT_TRUE((*route)->SetMsi(msi));
    return std::move(*route);
  }

  // A signal written to a sentinel route's native handle goes through the dispatcher; once it
  // is delivered, the dispatcher has run after everything made pending before (on Linux, where
  // epoll reports in readiness order; on Windows almost always, see UserModeIrqFdTest).
  void DispatcherBarrier() {
    if (!sentinel_) sentinel_ = NewEnabledRoute(kSentinel);
    const size_t before = injector_.Count(kSentinel);
    SignalNativeHandle(sentinel_->event());
    ASSERT_TRUE(injector_.WaitFor(kSentinel, before + 1)) << "sentinel MSI never arrived";
  }

  std::vector<std::thread::id> Threads() {
    std::lock_guard lock(threads_mu_);
    return threads_;
  }

  static constexpr MsiMessage kSentinel{0xFEE07000, 0xEE};
  FakeInjector injector_;  // outlives irqfd_
  std::mutex threads_mu_;
  std::vector<std::thread::id> threads_;  // the thread of each injection, in order
  std::optional<MsiMessage> fail_once_;   // the next injection of it fails (guarded likewise)
  std::unique_ptr<UserModeIrqFd> irqfd_;
  std::unique_ptr<IrqFdRoute> sentinel_;
};

TEST_F(UserModeIrqFdDirectTest, SignalInjectsOnTheSignallingThreadBeforeItReturns) {
  const MsiMessage msi = MsiMessage::Fixed(1, 0x41);
  auto route = NewEnabledRoute(msi);
  ASSERT_TRUE(route->event().Signal());
  // No wait: the injection happened inside Signal, on this thread, not on the dispatcher.
  EXPECT_EQ(injector_.Count(msi), 1u);
  EXPECT_EQ(Threads(), std::vector<std::thread::id>{std::this_thread::get_id()});
  EXPECT_EQ(irqfd_->injected_count(), 1u);
  // Each signal is one MSI (they do not coalesce on this path), with the current target.
  const MsiMessage retargeted = MsiMessage::Fixed(2, 0x42);
  ASSERT_TRUE(route->SetMsi(retargeted));
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(route->event().Signal());
  EXPECT_EQ(injector_.Count(retargeted), 2u);
  EXPECT_EQ(injector_.Count(msi), 1u);
  EXPECT_EQ(irqfd_->injected_count(), 3u);
}

TEST_F(UserModeIrqFdDirectTest, SignalReturnsTheInjectorsFailureInsteadOfReportingIt) {
  std::atomic<int> reported{0};
  irqfd_->SetErrorHandler([&](const Error&) { reported.fetch_add(1); });
  const MsiMessage failing = MsiMessage::Fixed(0, 0x45);
  auto route = NewEnabledRoute(failing);
  injector_.FailOn(failing);
  auto signalled = route->event().Signal();
  ASSERT_FALSE(signalled);
  EXPECT_EQ(signalled.error().code, ErrorCode::kInvalidArgument);
  EXPECT_STREQ(signalled.error().operation, "FakeInjector");
  DispatcherBarrier();
  EXPECT_EQ(reported.load(), 0) << "the signaller got the failure; nothing else to report";
  EXPECT_EQ(irqfd_->injected_count(), 1u);  // the sentinel only
  irqfd_->SetErrorHandler(nullptr);
}

TEST_F(UserModeIrqFdDirectTest, NativeHandleWritesStillGoThroughTheDispatcher) {
  const MsiMessage msi = MsiMessage::Fixed(3, 0x43);
  auto route = NewEnabledRoute(msi);
  SignalNativeHandle(route->event());
  ASSERT_TRUE(injector_.WaitFor(msi));
  const std::vector<std::thread::id> threads = Threads();
  ASSERT_EQ(threads.size(), 1u);
  EXPECT_NE(threads[0], std::this_thread::get_id());
}

TEST_F(UserModeIrqFdDirectTest, MaskedSignalsStayPendingAndUnmaskDeliversThemOnceWithTheNewTarget) {
  const MsiMessage before = MsiMessage::Fixed(0, 0x40);
  const MsiMessage after = MsiMessage::Fixed(0, 0x52);
  auto route = NewEnabledRoute(before);
  ASSERT_TRUE(route->ClearMsi());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(route->event().Signal());
  EXPECT_EQ(injector_.Count(before), 0u);  // a direct injection would have happened inline
  DispatcherBarrier();
  EXPECT_EQ(injector_.Count(before), 0u);  // and the dispatcher left the count pending too

  ASSERT_TRUE(route->SetMsi(after));
  ASSERT_TRUE(injector_.WaitFor(after));
  DispatcherBarrier();
  EXPECT_EQ(injector_.Count(after), 1u);  // the held count, once, by SetMsi or the dispatcher
  EXPECT_EQ(injector_.Count(before), 0u);
  EXPECT_EQ(*route->event().TryWait(), 0u);
  ASSERT_TRUE(route->event().Signal());  // and direct again after the unmask
  EXPECT_EQ(injector_.Count(after), 2u);
}

TEST_F(UserModeIrqFdDirectTest, AFailedInjectionOfAPendingCountAtSetMsiIsReportedAndRetried) {
  std::atomic<int> reported{0};
  irqfd_->SetErrorHandler([&](const Error& e) {
    EXPECT_STREQ(e.operation, "FailOnce");
    reported.fetch_add(1);
  });
  // Keep the dispatcher busy inside another route's injection, so that the count pending on
  // `route` is drained by SetMsi's sink, not by the dispatcher.
  const MsiMessage busy = MsiMessage::Fixed(0, 0x50);
  auto other = NewEnabledRoute(busy);
  injector_.BlockOn(busy);
  SignalNativeHandle(other->event());
  ASSERT_TRUE(injector_.WaitBlocked());

  const MsiMessage first = MsiMessage::Fixed(0, 0x51);
  const MsiMessage second = MsiMessage::Fixed(0, 0x52);
  auto route = NewEnabledRoute(first);
  ASSERT_TRUE(route->ClearMsi());
  ASSERT_TRUE(route->event().Signal());  // pending while masked
  {
    std::lock_guard lock(threads_mu_);
    fail_once_ = first;
  }
  ASSERT_TRUE(route->SetMsi(first));  // enabled, though handing the count over failed
  EXPECT_EQ(reported.load(), 1);
  EXPECT_EQ(injector_.Count(first), 0u);
  ASSERT_TRUE(route->event().Signal());  // no sink: counted (2 now), for the dispatcher
  EXPECT_EQ(injector_.Count(first), 0u);

  ASSERT_TRUE(route->SetMsi(second));  // the retarget sets the sink: the count goes out now
  EXPECT_EQ(injector_.Count(second), 1u);
  ASSERT_TRUE(route->event().Signal());  // and signals are direct again
  EXPECT_EQ(injector_.Count(second), 2u);

  injector_.Unblock();
  ASSERT_TRUE(injector_.WaitFor(busy));
  DispatcherBarrier();
  EXPECT_EQ(injector_.Count(second), 2u);  // nothing was left for the dispatcher
  EXPECT_EQ(injector_.Count(first), 0u);
  EXPECT_EQ(reported.load(), 1);
  irqfd_->SetErrorHandler(nullptr);
}

TEST_F(UserModeIrqFdDirectTest, AfterReleaseAndShutdownSignalsInjectNothing) {
  const MsiMessage released = MsiMessage::Fixed(0, 0x46);
  auto route = NewEnabledRoute(released);
  ASSERT_TRUE(route->Release());
  ASSERT_TRUE(route->event().Signal());  // the event is still open; it goes nowhere
  EXPECT_EQ(injector_.Count(released), 0u);

  const MsiMessage enabled = MsiMessage::Fixed(0, 0x47);
  auto live = NewEnabledRoute(enabled);
  ASSERT_TRUE(irqfd_->Shutdown());
  // The injector is gone: a sink left behind would call an empty std::function here.
  ASSERT_TRUE(live->event().Signal());
  EXPECT_EQ(injector_.Total(), 0u);
  EXPECT_EQ(*live->event().TryWait(), 1u);  // the signal was counted, as on a plain event
}

// MakeUserModeIrqFd's injector is Partition::RequestMsi, which is thread-safe: direct.
TEST(UserModeIrqFdMakeTest, MakeUserModeIrqFdSignalsDirectly) {
  test::FakePartition partition;
  auto irqfd = MakeUserModeIrqFd(partition);
  ASSERT_TRUE(irqfd) << irqfd.error().Message();
  auto route = (*irqfd)->NewRoute();
  ASSERT_TRUE(route);
  const MsiMessage msi = MsiMessage::Fixed(2, 0x48);
  ASSERT_TRUE((*route)->SetMsi(msi));
  ASSERT_TRUE((*route)->event().Signal());
  EXPECT_EQ(partition.injector.Count(msi), 1u);  // no wait: injected inside Signal
  route->reset();
  ASSERT_TRUE((*irqfd)->Shutdown());
}

}  // namespace
}  // namespace virt
