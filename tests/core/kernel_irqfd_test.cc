// KernelIrqFd over a fake IrqFdKernelOps: ordering rules, batching, rollback, resample, teardown.
#include "virt/kernel_irqfd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "virt/kernel_irqfd_route.h"

namespace virt::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// What the fake kernel saw, and which call fails next. Shared between the test and the ops the
// KernelIrqFd owns.
struct FakeKernel {
  std::vector<std::string> log;  // "push 24,25", "assign 24", "assign-resample 24", "deassign 24"
  std::string fail_next;         // "push", "assign" or "deassign": that call fails once
  int fail_skip = 0;             // ... after this many of its kind have succeeded
  std::vector<int> resample_fds;  // resample_fd of each assign
  std::atomic<int> ops_destroyed{0};  // FakeOps destructors run: the shared state was freed

  Status MaybeFail(const std::string& call) {
    if (fail_next != call) return Ok();
    if (fail_skip > 0) {
      --fail_skip;
      return Ok();
    }
    fail_next.clear();
    log.push_back(call + " failed");
    return Error::Errno("FAKE", 5);
  }
};

class FakeOps final : public IrqFdKernelOps {
 public:
  explicit FakeOps(std::shared_ptr<FakeKernel> kernel) : kernel_(std::move(kernel)) {}
  ~FakeOps() override { kernel_->ops_destroyed.fetch_add(1); }

  Status PushTable(std::span<const RoutingEntry> entries) override {
    if (Status s = kernel_->MaybeFail("push"); !s) return s;
    std::string line = "push";
    for (size_t i = 0; i < entries.size(); ++i) {
      line += (i == 0 ? " " : ",") + std::to_string(entries[i].gsi);
    }
    kernel_->log.push_back(line);
    return Ok();
  }
  Status Assign(Gsi gsi, int /*event_fd*/, int resample_fd) override {
    if (Status s = kernel_->MaybeFail("assign"); !s) return s;
    kernel_->resample_fds.push_back(resample_fd);
    kernel_->log.push_back((resample_fd >= 0 ? "assign-resample " : "assign ") +
                           std::to_string(gsi));
    return Ok();
  }
  Status Deassign(Gsi gsi, int /*event_fd*/) override {
    if (Status s = kernel_->MaybeFail("deassign"); !s) return s;
    kernel_->log.push_back("deassign " + std::to_string(gsi));
    return Ok();
  }

 private:
  std::shared_ptr<FakeKernel> kernel_;
};

constexpr uint32_t kCapacity = 32;
constexpr uint32_t kReserved = 24;
const MsiMessage kLevel{0xFEE00000, 0xC033};

class KernelIrqFdTest : public ::testing::Test {
 protected:
  void Make(KernelIrqFd::Options options = {}, uint32_t capacity = kCapacity) {
    auto gsis = GsiTable::Create(capacity);
    ASSERT_TRUE(gsis.has_value());
    ASSERT_TRUE(gsis->Reserve(0, kReserved));
    irqfd_ = KernelIrqFd::Create(std::make_unique<FakeOps>(kernel_), std::move(*gsis), options);
    irqfd_->SetErrorHandler([this](const Error& e) { reported_.push_back(e.Message()); });
  }
  void SetUp() override { Make(); }
  void TearDown() override {
    if (irqfd_) irqfd_->SetErrorHandler(nullptr);
  }

  std::unique_ptr<IrqFdRoute> Route() {
    auto r = irqfd_->NewRoute();
    EXPECT_TRUE(r.has_value());
    return r ? std::move(*r) : nullptr;
  }

  std::shared_ptr<FakeKernel> kernel_ = std::make_shared<FakeKernel>();
  std::unique_ptr<KernelIrqFd> irqfd_;
  std::vector<std::string> reported_;
};

TEST_F(KernelIrqFdTest, ArmsOnlyAfterTheEntryIsPushedAndDisarmsBeforeItLeaves) {
  auto r = Route();
  EXPECT_EQ(r->gsi(), kReserved);
  EXPECT_EQ(r->msi(), std::nullopt);
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  EXPECT_EQ(r->msi(), MsiMessage::Fixed(0, 0x40));
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(1, 0x41)));  // retarget: a push, no re-arm
  ASSERT_TRUE(r->ClearMsi());
  EXPECT_EQ(r->msi(), std::nullopt);
  EXPECT_THAT(kernel_->log, ElementsAre("push 24", "assign 24", "push 24", "deassign 24", "push"));
}

TEST_F(KernelIrqFdTest, TeardownDisarmsRemovesPushesAndOnlyThenFreesTheGsi) {
  auto r = Route();
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  kernel_->log.clear();
  kernel_->fail_next = "push";
  EXPECT_FALSE(r->Release().has_value());
  // The push without the entry failed: the GSI stays taken (parked) until a push succeeds.
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);
  auto other = Route();
  EXPECT_NE(other->gsi(), kReserved);
  ASSERT_TRUE(other->SetMsi(MsiMessage::Fixed(0, 0x41)));
  EXPECT_THAT(kernel_->log,
              ElementsAre("deassign 24", "push failed", "push 25", "assign 25"));
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);  // 24 freed by the successful push
  EXPECT_EQ(r->Release().error().code, ErrorCode::kAlreadyReleased);
}

// A released route keeps naming its old GSI; once a newer route holds that GSI, the old one's
// calls must fail and leave the newer route's entry and registration alone.
TEST_F(KernelIrqFdTest, ARouteReleasedAndItsGsiReusedCannotTouchTheNewRoute) {
  auto old_route = Route();
  ASSERT_TRUE(old_route->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(old_route->Release());
  auto fresh = Route();
  ASSERT_EQ(fresh->gsi(), old_route->gsi());  // the freed GSI is handed out next
  ASSERT_TRUE(fresh->SetMsi(MsiMessage::Fixed(1, 0x41)));
  kernel_->log.clear();
  EXPECT_EQ(old_route->SetMsi(MsiMessage::Fixed(2, 0x42)).error().code,
            ErrorCode::kAlreadyReleased);
  EXPECT_EQ(old_route->ClearMsi().error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(old_route->msi(), std::nullopt);
  EXPECT_THAT(kernel_->log, IsEmpty());
  EXPECT_EQ(fresh->msi(), MsiMessage::Fixed(1, 0x41));
}

// SetMsi racing with Release of the same route: each SetMsi either lands before the teardown
// or fails with kAlreadyReleased; afterwards the GSI is free and the table empty either way.
TEST_F(KernelIrqFdTest, SetMsiRacingWithReleaseOfTheSameRouteIsOrderedByTheCore) {
  for (int round = 0; round < 50; ++round) {
    auto r = Route();
    ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
    std::atomic<bool> go{false};
    std::thread setter([&] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < 20; ++i) {
        Status s = r->SetMsi(MsiMessage::Fixed(0, static_cast<uint8_t>(0x41 + i % 2)));
        if (!s) {
          EXPECT_EQ(s.error().code, ErrorCode::kAlreadyReleased);
          return;
        }
      }
    });
    go.store(true);
    ASSERT_TRUE(r->Release());
    setter.join();
    EXPECT_EQ(irqfd_->allocated_gsis(), 0u);
    auto routes = irqfd_->Routes();
    ASSERT_TRUE(routes.has_value());
    EXPECT_THAT(*routes, IsEmpty());
  }
}

TEST_F(KernelIrqFdTest, AMaskedRouteIsFreedWithoutAnyKernelCall) {
  auto r = Route();
  r.reset();
  EXPECT_THAT(kernel_->log, IsEmpty());
  EXPECT_EQ(irqfd_->allocated_gsis(), 0u);
}

TEST_F(KernelIrqFdTest, ABatchPushesOnceAtTheOutermostEndAndThenArms) {
  auto a = Route();
  auto b = Route();
  {
    RouteBatch outer(*irqfd_);
    ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
    {
      RouteBatch inner(*irqfd_);
      ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
      ASSERT_TRUE(inner.Commit());
    }
    EXPECT_THAT(kernel_->log, IsEmpty());
    EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));  // will be armed by the batch
    ASSERT_TRUE(outer.Commit());
  }
  EXPECT_THAT(kernel_->log, ElementsAre("push 24,25", "assign 24", "assign 25"));
  EXPECT_EQ(irqfd_->push_count(), 1u);
  EXPECT_FALSE(irqfd_->EndBatch().has_value());  // no batch open
}

TEST_F(KernelIrqFdTest, AFailedBatchPushRollsBackAndLeavesRoutesMasked) {
  auto a = Route();
  irqfd_->BeginBatch();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  kernel_->fail_next = "push";
  EXPECT_FALSE(irqfd_->EndBatch().has_value());
  EXPECT_THAT(kernel_->log, ElementsAre("push failed"));
  EXPECT_EQ(a->msi(), std::nullopt);
  // The table rolled back, so the next change pushes without the lost entry.
  auto b = Route();
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  EXPECT_THAT(kernel_->log, ElementsAre("push failed", "push 25", "assign 25"));
}

TEST_F(KernelIrqFdTest, AFailedAssignRemovesTheEntryAgain) {
  auto a = Route();
  kernel_->fail_next = "assign";
  EXPECT_FALSE(a->SetMsi(MsiMessage::Fixed(0, 0x40)).has_value());
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_THAT(kernel_->log, ElementsAre("push 24", "assign failed", "push"));
}

// EndBatch hands its assigns to IrqFdKernelOps::AssignEach (here its default, one Assign each):
// the others are still armed after one fails, and only the failed route's entry is pushed away.
TEST_F(KernelIrqFdTest, AFailedAssignInABatchMasksOnlyItsRoute) {
  auto a = Route();
  auto b = Route();
  auto c = Route();
  RouteBatch batch(*irqfd_);
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  ASSERT_TRUE(c->SetMsi(MsiMessage::Fixed(0, 0x42)));
  kernel_->fail_next = "assign";
  kernel_->fail_skip = 1;
  Status s = batch.Commit();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().native_code, 5);
  EXPECT_THAT(kernel_->log,
              ElementsAre("push 24,25,26", "assign 24", "assign failed", "assign 26", "push 24,26"));
  EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_EQ(c->msi(), MsiMessage::Fixed(0, 0x42));
  kernel_->log.clear();
  // Armed routes are deassigned at release; the masked one is not.
  a.reset();
  b.reset();
  EXPECT_THAT(kernel_->log, ElementsAre("deassign 24", "push 26"));
}

TEST_F(KernelIrqFdTest, AFailedDeassignOnClearKeepsTheRouteArmed) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  kernel_->fail_next = "deassign";
  EXPECT_FALSE(a->ClearMsi().has_value());
  EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_THAT(kernel_->log, ElementsAre("push 24", "assign 24", "deassign failed"));
}

// The irqfd still points at the entry until the route's eventfd closes, so the entry (and its
// GSI) stays until the next push.
TEST_F(KernelIrqFdTest, AFailedTeardownDeassignKeepsTheEntryUntilTheNextPush) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  kernel_->fail_next = "deassign";
  EXPECT_FALSE(a->Release().has_value());
  EXPECT_THAT(kernel_->log, ElementsAre("push 24", "assign 24", "deassign failed"));
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);  // parked
  auto b = Route();
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  EXPECT_THAT(kernel_->log.back(), "assign 25");
  EXPECT_EQ(kernel_->log[3], "push 25");  // the parked entry left with this push
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);
}

TEST_F(KernelIrqFdTest, ResampleRegistersLevelMsisAndReRegistersOnASwitch) {
  Make({.resample = true});
  auto r = Route();
  auto* route = dynamic_cast<KernelIrqFdRoute*>(r.get());
  ASSERT_NE(route, nullptr);
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  EXPECT_EQ(route->resample_event(), nullptr);
  ASSERT_TRUE(r->SetMsi(kLevel));
  ASSERT_NE(route->resample_event(), nullptr);
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x41)));
  EXPECT_THAT(kernel_->log, ElementsAre("push 24", "assign 24", "deassign 24", "push 24",
                                        "assign-resample 24", "deassign 24", "push 24",
                                        "assign 24"));
  EXPECT_THAT(kernel_->resample_fds,
              ElementsAre(-1, route->resample_event()->native_handle(), -1));
}

// Inside a batch, a switch between edge and level cannot stay in memory (only an assign sets
// the RESAMPLE flag): the route is detached at once and re-armed, with the flag, after the
// batch's push, while a plain retarget only edits the table. An invalid MSI inside a batch is
// refused as outside one and changes nothing.
TEST_F(KernelIrqFdTest, InsideABatchAnEdgeLevelSwitchDetachesAtOnceAndReArmsAfterThePush) {
  Make({.resample = true});
  auto a = Route();
  auto b = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x50)));
  kernel_->log.clear();
  irqfd_->BeginBatch();
  ASSERT_TRUE(a->SetMsi(kLevel));
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x51)));
  EXPECT_THAT(kernel_->log, ElementsAre("deassign 24"));
  EXPECT_EQ(a->SetMsi(MsiMessage{0x1234, 0x40}).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(irqfd_->EndBatch());
  EXPECT_THAT(kernel_->log, ElementsAre("deassign 24", "push 24,25", "assign-resample 24"));
  EXPECT_EQ(a->msi(), kLevel);
  EXPECT_EQ(b->msi(), MsiMessage::Fixed(0, 0x51));
}

// Two threads giving one route its first level-triggered MSI at once both create a resample
// event; one is published and both registrations use it (the loser's closes).
TEST_F(KernelIrqFdTest, RacingFirstLevelMsisShareOneResampleEvent) {
  Make({.resample = true});
  for (int round = 0; round < 50; ++round) {
    auto r = Route();
    auto* route = dynamic_cast<KernelIrqFdRoute*>(r.get());
    ASSERT_NE(route, nullptr);
    kernel_->resample_fds.clear();
    std::atomic<int> ready{0};
    auto enable = [&] {
      ready.fetch_add(1);
      while (ready.load() < 2) std::this_thread::yield();
      EXPECT_TRUE(r->SetMsi(kLevel));
    };
    std::thread a(enable), b(enable);
    a.join();
    b.join();
    const Event* resample = route->resample_event();
    ASSERT_NE(resample, nullptr);
    ASSERT_FALSE(kernel_->resample_fds.empty());
    for (int fd : kernel_->resample_fds) EXPECT_EQ(fd, resample->native_handle());
  }
}

TEST_F(KernelIrqFdTest, WithoutResampleALevelMsiIsAssignedPlain) {
  auto r = Route();
  ASSERT_TRUE(r->SetMsi(kLevel));
  EXPECT_EQ(dynamic_cast<KernelIrqFdRoute*>(r.get())->resample_event(), nullptr);
  EXPECT_THAT(kernel_->log, ElementsAre("push 24", "assign 24"));
}

TEST_F(KernelIrqFdTest, RoutesOutlivingShutdownFailWithoutKernelCalls) {
  auto a = Route();
  auto b = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  kernel_->log.clear();
  irqfd_->Shutdown();
  EXPECT_EQ(a->SetMsi(MsiMessage::Fixed(0, 0x41)).error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(a->ClearMsi().error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_EQ(b->Release().error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(irqfd_->NewRoute().error().code, ErrorCode::kPartitionGone);
  a.reset();
  irqfd_.reset();  // routes keep the shared state alive
  b.reset();
  EXPECT_THAT(kernel_->log, IsEmpty());
  EXPECT_THAT(reported_, IsEmpty());
}

TEST_F(KernelIrqFdTest, AMaskedRouteReportsNoMsiEvenWhenItsRemovalPushFailed) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  kernel_->fail_next = "push";
  EXPECT_FALSE(a->ClearMsi().has_value());  // disarmed, but the kernel keeps the entry
  EXPECT_EQ(a->msi(), std::nullopt);        // nothing delivers it: the route is masked
}

// Route objects live in blocks of 64 the shared state keeps (no malloc per route): more routes
// than fit in several blocks, destroyed in an interleaved order and made again, stay distinct
// objects that each keep their own GSI and MSI (ASan poisons the free pieces, so a piece handed
// out twice or touched after its route died fails under the asan preset).
TEST_F(KernelIrqFdTest, RoutesBeyondSeveralMemoryBlocksStayDistinctThroughChurn) {
  constexpr uint32_t kRoutes = 200;
  Make({}, kReserved + kRoutes);
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (uint32_t i = 0; i < kRoutes; ++i) {
    routes.push_back(Route());
    ASSERT_NE(routes.back(), nullptr);
  }
  EXPECT_EQ(irqfd_->NewRoute().error().code, ErrorCode::kExhausted);  // memory went back
  auto expect = [](uint32_t i) {
    return MsiMessage::Fixed(static_cast<uint8_t>(i), static_cast<uint8_t>(0x40 + i % 192));
  };
  {
    RouteBatch batch(*irqfd_);
    for (uint32_t i = 0; i < kRoutes; ++i) ASSERT_TRUE(routes[i]->SetMsi(expect(i)));
    ASSERT_TRUE(batch.Commit());
  }
  for (uint32_t i = 0; i < kRoutes; i += 2) routes[i].reset();
  for (uint32_t i = 0; i < kRoutes; i += 2) {
    routes[i] = Route();
    ASSERT_NE(routes[i], nullptr);
    ASSERT_TRUE(routes[i]->SetMsi(expect(i)));
  }
  std::vector<Gsi> gsis;
  for (uint32_t i = 0; i < kRoutes; ++i) {
    EXPECT_EQ(routes[i]->msi(), expect(i)) << "route " << i;
    gsis.push_back(routes[i]->gsi());
    for (uint32_t j = 0; j < i; ++j) ASSERT_NE(routes[i].get(), routes[j].get());
  }
  std::sort(gsis.begin(), gsis.end());
  EXPECT_EQ(std::adjacent_find(gsis.begin(), gsis.end()), gsis.end());
  auto listed = irqfd_->Routes();
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), kRoutes);
  irqfd_.reset();  // the routes keep the blocks alive
  routes.clear();
  EXPECT_THAT(reported_, IsEmpty());
}

// The shared state (and the ops it owns) goes with the last of the KernelIrqFd and its routes,
// whichever that is, exactly once.
TEST_F(KernelIrqFdTest, TheSharedStateGoesWithTheLastOfTheIrqFdAndItsRoutes) {
  auto a = Route();
  auto b = Route();
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x40)));
  irqfd_->Shutdown();
  irqfd_.reset();
  EXPECT_EQ(kernel_->ops_destroyed.load(), 0);
  a.reset();
  EXPECT_EQ(kernel_->ops_destroyed.load(), 0);
  // Still intact: the route's call reaches the core and is refused there.
  EXPECT_EQ(b->SetMsi(MsiMessage::Fixed(0, 0x41)).error().code, ErrorCode::kPartitionGone);
  b.reset();
  EXPECT_EQ(kernel_->ops_destroyed.load(), 1);

  // Routes gone first: the KernelIrqFd's destruction frees it.
  Make();
  Route().reset();
  EXPECT_EQ(kernel_->ops_destroyed.load(), 1);
  irqfd_.reset();
  EXPECT_EQ(kernel_->ops_destroyed.load(), 2);
}

// Routes destroyed on many threads at once, after the KernelIrqFd: one of them frees the shared
// state, once, after every other thread is done with it (the tsan preset checks the ordering,
// asan the use after free a wrong count would cause).
TEST_F(KernelIrqFdTest, RoutesDestroyedOnManyThreadsFreeTheSharedStateOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2;
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < kThreads * kPerThread; ++i) {
    routes.push_back(Route());
    ASSERT_NE(routes.back(), nullptr);
  }
  irqfd_->Shutdown();
  irqfd_.reset();
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) routes[static_cast<size_t>(t * kPerThread + i)].reset();
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(kernel_->ops_destroyed.load(), 1);
}

#if defined(__SANITIZE_ADDRESS__)
// Under ASan the core poisons the route memory it holds free: reading a destroyed route (a
// dangling IrqFdRoute*) is reported at once, as it would be for freed heap memory.
TEST_F(KernelIrqFdTest, ADestroyedRoutesMemoryIsPoisonedUnderAsan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto r = Route();
  const volatile char* dangling = reinterpret_cast<const volatile char*>(r.get());
  r.reset();
  EXPECT_DEATH((void)dangling[8], "use-after-poison");
}
#endif

TEST(KernelIrqFdTypes, RoutesAreNotCopyable) {
  static_assert(!std::is_copy_constructible_v<KernelIrqFdRoute>);
  static_assert(std::is_nothrow_destructible_v<KernelIrqFdRoute>);
  static_assert(std::is_nothrow_destructible_v<KernelIrqFd>);
}

}  // namespace
}  // namespace virt::test
