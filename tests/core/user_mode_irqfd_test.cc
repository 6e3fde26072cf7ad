// Checks UserModeIrqFd against the IrqFd contract with a fake injector: delivery, retarget, mask/unmask, drop, shutdown, GSIs, batches, errors.
#include "virt/user_mode_irqfd.h"

#include <gtest/gtest.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <unistd.h>
#endif

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "user_mode_irqfd_fakes.h"

namespace virt {
namespace {

using test::FakeInjector;
using test::kGuard;

class UserModeIrqFdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto irqfd = UserModeIrqFd::Create(injector_.AsInjector());
    ASSERT_TRUE(irqfd) << irqfd.error().Message();
    irqfd_ = std::move(*irqfd);
    sentinel_ = NewRoute();
    ASSERT_TRUE(sentinel_->SetMsi(kSentinel));
  }

  std::unique_ptr<IrqFdRoute> NewRoute() {
    auto route = irqfd_->NewRoute();
    EXPECT_TRUE(route) << route.error().Message();
    return route ? std::move(*route) : nullptr;
  }

  // Signals the sentinel route and waits for its delivery. On Linux epoll reports events in
  // the order they became ready, so the single dispatcher has then run after everything
  // signalled before, and anything not delivered by now was held back. On Windows each event
  // reaches the poller through the thread pool, in no guaranteed order, so there a signal that
  // is wrongly still watched is caught by the checks after a Barrier almost always, not always;
  // positive checks wait for what they expect instead.
  void Barrier() {
    const size_t before = injector_.Count(kSentinel);
    ASSERT_TRUE(sentinel_->event().Signal());
    ASSERT_TRUE(injector_.WaitFor(kSentinel, before + 1)) << "sentinel MSI never arrived";
  }

  static constexpr MsiMessage kSentinel{0xFEE07000, 0xEE};
  FakeInjector injector_;  // outlives irqfd_
  std::unique_ptr<UserModeIrqFd> irqfd_;
  std::unique_ptr<IrqFdRoute> sentinel_;
};

TEST_F(UserModeIrqFdTest, NewRouteIsMaskedWithAnUnreservedGsiAndNoPushes) {
  auto route = NewRoute();
  EXPECT_GE(route->gsi(), UserModeIrqFd::kReservedGsis);
  EXPECT_NE(route->gsi(), sentinel_->gsi());
  EXPECT_FALSE(route->msi().has_value());
  EXPECT_TRUE(route->event().valid());
  ASSERT_TRUE(route->event().Signal());
  Barrier();
  EXPECT_EQ(injector_.Total(), injector_.Count(kSentinel));  // the masked route injected nothing
  EXPECT_EQ(irqfd_->push_count(), 0u);
}

TEST_F(UserModeIrqFdTest, DeliversTheCurrentMsiAndRetargets) {
  auto route = NewRoute();
  const MsiMessage first = MsiMessage::Fixed(0, 0x40);
  const MsiMessage second = MsiMessage::Fixed(1, 0x51);
  ASSERT_TRUE(route->SetMsi(first));
  EXPECT_EQ(route->msi(), first);
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(injector_.WaitFor(first));

  ASSERT_TRUE(route->SetMsi(second));
  EXPECT_EQ(route->msi(), second);
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(injector_.WaitFor(second));
  Barrier();
  EXPECT_EQ(injector_.Count(first), 1u);
  EXPECT_EQ(injector_.Count(second), 1u);
  ASSERT_TRUE(irqfd_->Shutdown());  // joins the dispatcher, which counts after injecting
  EXPECT_EQ(irqfd_->injected_count(), injector_.Total());
}

TEST_F(UserModeIrqFdTest, SignalsBeforeEnableArePendingAndDeliveredOnceOnSetMsi) {
  auto route = NewRoute();
  ASSERT_TRUE(route->event().Signal(5));
  const MsiMessage msi = MsiMessage::Fixed(0, 0x42);
  ASSERT_TRUE(route->SetMsi(msi));
  ASSERT_TRUE(injector_.WaitFor(msi));
  Barrier();
  EXPECT_EQ(injector_.Count(msi), 1u);  // five signals, one MSI
}

TEST_F(UserModeIrqFdTest, MaskHoldsSignalsAndUnmaskDeliversThemOnceWithTheNewTarget) {
  auto route = NewRoute();
  const MsiMessage before = MsiMessage::Fixed(0, 0x40);
  const MsiMessage after = MsiMessage::Fixed(0, 0x52);
  ASSERT_TRUE(route->SetMsi(before));
  ASSERT_TRUE(route->ClearMsi());
  EXPECT_FALSE(route->msi().has_value());
  ASSERT_TRUE(route->ClearMsi());  // masking twice is fine
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(route->event().Signal());
  Barrier();
  EXPECT_EQ(injector_.Count(before), 0u);
  EXPECT_EQ(injector_.Total(), injector_.Count(kSentinel));

  ASSERT_TRUE(route->SetMsi(after));
  ASSERT_TRUE(injector_.WaitFor(after));
  Barrier();
  EXPECT_EQ(injector_.Count(after), 1u);  // coalesced, and exactly once
  EXPECT_EQ(injector_.Count(before), 0u);
  EXPECT_EQ(*route->event().TryWait(), 0u);  // the dispatcher drained the held count
}

TEST_F(UserModeIrqFdTest, InvalidMsiIsRejectedAndTheRouteKeepsItsTarget) {
  auto route = NewRoute();
  auto bad = route->SetMsi({0xFED00000, 0x40});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(route->msi().has_value());
  const MsiMessage good = MsiMessage::Fixed(0, 0x40);
  ASSERT_TRUE(route->SetMsi(good));
  ASSERT_FALSE(route->SetMsi({0xFEE00000, 0x300}));  // reserved delivery mode 3
  EXPECT_EQ(route->msi(), good);
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(injector_.WaitFor(good));
}

TEST_F(UserModeIrqFdTest, NothingIsDeliveredForADroppedRouteEvenThroughADupOfItsEvent) {
  auto route = NewRoute();
  const MsiMessage msi = MsiMessage::Fixed(0, 0x40);
  ASSERT_TRUE(route->SetMsi(msi));
  // A second handle keeps the event object alive after the route closes its own, and signals it
  // behind the route's back, as a device holding a dup would.
#ifdef _WIN32
  HANDLE old_event = nullptr;
  ASSERT_TRUE(::DuplicateHandle(::GetCurrentProcess(), route->event().native_handle(),
                                ::GetCurrentProcess(), &old_event, 0, FALSE,
                                DUPLICATE_SAME_ACCESS));
  route.reset();
  ASSERT_TRUE(::SetEvent(old_event));
#else
  const int old_event = ::dup(route->event().native_handle());
  ASSERT_GE(old_event, 0);
  route.reset();
  const uint64_t one = 1;
  ASSERT_EQ(::write(old_event, &one, sizeof one), static_cast<ssize_t>(sizeof one));
#endif
  Barrier();  // the dispatcher ran after the signal; a live registration would have fired
  EXPECT_EQ(injector_.Count(msi), 0u);
#ifdef _WIN32
  ::CloseHandle(old_event);
#else
  ::close(old_event);
#endif
}

TEST_F(UserModeIrqFdTest, ReleaseReturnsTheOutcomeOnceAndFreesTheGsi) {
  auto route = NewRoute();
  const Gsi gsi = route->gsi();
  const MsiMessage msi = MsiMessage::Fixed(0, 0x40);
  ASSERT_TRUE(route->SetMsi(msi));
  ASSERT_TRUE(route->Release());
  ASSERT_TRUE(route->event().Signal());  // the event stays open until destruction
  Barrier();
  EXPECT_EQ(injector_.Count(msi), 0u);
  for (auto status : {route->Release(), route->SetMsi(msi), route->ClearMsi()}) {
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().code, ErrorCode::kAlreadyReleased);
  }
  EXPECT_FALSE(route->msi().has_value());
  EXPECT_EQ(NewRoute()->gsi(), gsi);  // freed GSIs are handed out next
}

TEST_F(UserModeIrqFdTest, DroppingARouteWhileItIsDispatchedWaitsForTheDispatch) {
  auto route = NewRoute();
  const MsiMessage msi = MsiMessage::Fixed(0, 0x44);
  injector_.BlockOn(msi);
  ASSERT_TRUE(route->SetMsi(msi));
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(injector_.WaitBlocked());  // the dispatcher is inside the injector for `route`
  std::thread dropper([&] {
    EXPECT_TRUE(route->Release());
    // The fake records the MSI only when it returns: Release waited for the dispatch.
    EXPECT_EQ(injector_.Count(msi), 1u);
  });
  injector_.Unblock();
  dropper.join();
  ASSERT_TRUE(route->event().Signal());
  Barrier();
  EXPECT_EQ(injector_.Count(msi), 1u);
}

TEST_F(UserModeIrqFdTest, ShutdownMakesRoutesFailWithPartitionGoneAndDropsTheInjector) {
  auto token = std::make_shared<int>(0);
  auto irqfd = UserModeIrqFd::Create([token](const MsiMessage&) -> Result<bool> { return true; });
  ASSERT_TRUE(irqfd);
  auto route = (*irqfd)->NewRoute();
  ASSERT_TRUE(route);
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x40)));
  EXPECT_EQ(token.use_count(), 2);
  ASSERT_TRUE((*irqfd)->Shutdown());
  EXPECT_EQ(token.use_count(), 1);  // the injector is gone: it can never run again
  ASSERT_TRUE((*irqfd)->Shutdown());  // idempotent

  for (auto status : {(*route)->SetMsi(MsiMessage::Fixed(0, 0x41)), (*route)->ClearMsi()}) {
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().code, ErrorCode::kPartitionGone);
  }
  EXPECT_FALSE((*route)->msi().has_value());
  auto fresh = (*irqfd)->NewRoute();
  ASSERT_FALSE(fresh);
  EXPECT_EQ(fresh.error().code, ErrorCode::kPartitionGone);
  EXPECT_TRUE((*route)->event().Signal());  // the event still works; it goes nowhere
  irqfd->reset();  // routes may outlive the IrqFd
  EXPECT_TRUE((*route)->Release());
}

TEST_F(UserModeIrqFdTest, InjectorFailuresGoToTheErrorHandlerWhichCannotShutDownThere) {
  const MsiMessage failing = MsiMessage::Fixed(0, 0x45);
  injector_.FailOn(failing);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Error> errors;
  std::vector<Status> shutdowns;
  irqfd_->SetErrorHandler([&](const Error& e) {
    std::lock_guard lock(mu);
    errors.push_back(e);
    shutdowns.push_back(irqfd_->Shutdown());  // on the dispatcher thread: refused
    cv.notify_all();
  });
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(failing));
  ASSERT_TRUE(route->event().Signal());
  {
    // Waited for, not inferred from a Barrier: on Windows the two signals may reach the poller
    // in either order.
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, kGuard, [&] { return !errors.empty(); }))
        << "the injector failure was never reported";
  }
  Barrier();  // the dispatcher is still alive after the failure
  irqfd_->SetErrorHandler(nullptr);  // the handler refers to locals of this test
  std::lock_guard lock(mu);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_STREQ(errors[0].operation, "FakeInjector");
  ASSERT_EQ(shutdowns.size(), 1u);
  ASSERT_FALSE(shutdowns[0]);
  EXPECT_EQ(shutdowns[0].error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(UserModeIrqFdTest, BatchesNestPushNothingAndChangesHoldByEndBatch) {
  auto route = NewRoute();
  const MsiMessage msi = MsiMessage::Fixed(0, 0x46);
  {
    RouteBatch outer(*irqfd_);
    irqfd_->BeginBatch();
    ASSERT_TRUE(route->SetMsi(msi));
    ASSERT_TRUE(irqfd_->EndBatch());
    ASSERT_TRUE(outer.Commit());
  }
  EXPECT_EQ(irqfd_->push_count(), 0u);
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(injector_.WaitFor(msi));
  auto unmatched = irqfd_->EndBatch();
  ASSERT_FALSE(unmatched);
  EXPECT_EQ(unmatched.error().code, ErrorCode::kFailedPrecondition);
}

TEST(UserModeIrqFdCreateTest, GsisRunOutLikeTheKernelOnesAndComeBackOnDrop) {
  FakeInjector injector;
  auto bad = UserModeIrqFd::Create(injector.AsInjector(), UserModeIrqFd::kReservedGsis);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  auto empty = UserModeIrqFd::Create(nullptr);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);

  auto irqfd = UserModeIrqFd::Create(injector.AsInjector(), 30);
  ASSERT_TRUE(irqfd) << irqfd.error().Message();
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (Gsi expected = 24; expected < 30; ++expected) {
    auto route = (*irqfd)->NewRoute();
    ASSERT_TRUE(route) << route.error().Message();
    EXPECT_EQ((*route)->gsi(), expected);
    routes.push_back(std::move(*route));
  }
  auto full = (*irqfd)->NewRoute();
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kExhausted);
  const Gsi freed = routes[2]->gsi();
  routes[2].reset();
  auto again = (*irqfd)->NewRoute();
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->gsi(), freed);
}

TEST(UserModeIrqFdCreateTest, MakeUserModeIrqFdInjectsThroughThePartition) {
  test::FakePartition partition;
  {
    auto irqfd = MakeUserModeIrqFd(partition);
    ASSERT_TRUE(irqfd) << irqfd.error().Message();
    auto route = (*irqfd)->NewRoute();
    ASSERT_TRUE(route);
    const MsiMessage msi = MsiMessage::Fixed(2, 0x47);
    ASSERT_TRUE((*route)->SetMsi(msi));
    ASSERT_TRUE((*route)->event().Signal());
    ASSERT_TRUE(partition.injector.WaitFor(msi));
  }  // the irqfd shuts down before the partition goes
}

}  // namespace
}  // namespace virt
