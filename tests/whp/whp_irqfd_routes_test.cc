// WhpTriggerIrqFd's snapshot half (issue 12): NewRouteAt places a masked route on a chosen GSI
// with no WHv call, and the trigger it later gets carries the exact WHP values; Routes lists the
// live routes by GSI with their MSIs, consistently while other threads change routes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "whp_irqfd_fixture.h"

namespace virt::whp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The WHV_TRIGGER_PARAMETERS of the one live trigger, as WHP received them.
WHV_TRIGGER_PARAMETERS OnlyParameters(const FakeWhp& fake) {
  const auto triggers = fake.triggers();
  EXPECT_EQ(triggers.size(), 1u);
  return triggers.empty() ? WHV_TRIGGER_PARAMETERS{} : triggers.begin()->second.parameters;
}

TEST_F(WhpIrqFdTest, NewRouteAtTakesExactlyThatGsiMaskedAndMakesNoWhvCall) {
  auto route = irqfd_->NewRouteAt(100);
  ASSERT_TRUE(route.has_value()) << route.error().Message();
  EXPECT_EQ((*route)->gsi(), 100u);
  EXPECT_FALSE((*route)->msi().has_value());
  EXPECT_TRUE((*route)->event().valid());
  ASSERT_TRUE((*route)->event().Signal());  // masked: held on the route's event
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_EQ(Delivered(), 0u);
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);
  auto other = NewRoute();  // NewRoute never hands out a GSI a route holds
  EXPECT_NE(other->gsi(), 100u);
  auto routes = irqfd_->Routes();
  ASSERT_TRUE(routes.has_value()) << routes.error().Message();
  EXPECT_EQ(*routes, (std::vector<RouteState>{{other->gsi(), std::nullopt}, {100, std::nullopt}}));
}

TEST_F(WhpIrqFdTest, ARouteAtAChosenGsiGetsATriggerWithTheExactWhpValues) {
  auto route = irqfd_->NewRouteAt(0x7FF);  // the last GSI of the default table
  ASSERT_TRUE(route.has_value()) << route.error().Message();
  ASSERT_TRUE((*route)->event().Signal());  // pending since before the enable
  // MSI address 0xFEE01000 / data 0x40: physical APIC 1, fixed, edge, vector 0x40.
  ASSERT_TRUE((*route)->SetMsi(kMsiA));
  EXPECT_THAT(fake_.log(), ElementsAre("CreateTrigger", "SetEvent"));
  const FakeWhp::Trigger trigger = OnlyTrigger();
  EXPECT_EQ(trigger.partition, partition_);
  EXPECT_EQ(static_cast<int>(trigger.parameters.TriggerType), 0);  // WHvTriggerTypeInterrupt
  const WHV_INTERRUPT_CONTROL& a = trigger.parameters.Interrupt;
  EXPECT_EQ(a.Type, 0u);             // WHvX64InterruptTypeFixed
  EXPECT_EQ(a.DestinationMode, 0u);  // physical
  EXPECT_EQ(a.TriggerMode, 0u);      // edge
  EXPECT_EQ(a.Destination, 1u);
  EXPECT_EQ(a.Vector, 0x40u);
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], a));

  // Retarget to 0xFEE02000 / 0x51: the same trigger is updated to APIC 2, vector 0x51.
  const WHV_TRIGGER_HANDLE handle = fake_.triggers().begin()->first;
  fake_.ClearLog();
  ASSERT_TRUE((*route)->SetMsi(kMsiB));
  EXPECT_THAT(fake_.log(), ElementsAre("UpdateTriggerParameters"));
  const WHV_TRIGGER_PARAMETERS b = OnlyParameters(fake_);
  EXPECT_EQ(static_cast<int>(b.TriggerType), 0);
  EXPECT_EQ(b.Interrupt.Type, 0u);
  EXPECT_EQ(b.Interrupt.DestinationMode, 0u);
  EXPECT_EQ(b.Interrupt.Destination, 2u);
  EXPECT_EQ(b.Interrupt.Vector, 0x51u);
  EXPECT_EQ(fake_.triggers().begin()->first, handle);  // the same trigger, not a new one
  EXPECT_EQ(OnlyTrigger().event, trigger.event);
  EXPECT_EQ(*irqfd_->Routes(), (std::vector<RouteState>{{0x7FF, kMsiB}}));
}

TEST_F(WhpIrqFdTest, NewRouteAtRefusesBadGsisAndLeavesTheTableAsItWas) {
  auto held = irqfd_->NewRouteAt(100);
  ASSERT_TRUE(held.has_value());
  ASSERT_TRUE((*held)->SetMsi(kMsiA));
  const auto before = *irqfd_->Routes();
  fake_.ClearLog();

  struct Case {
    Gsi gsi;
    ErrorCode code;
    const char* words;
  };
  for (const Case& c : {Case{100, ErrorCode::kFailedPrecondition, "GSI 100 is in use"},
                        Case{0, ErrorCode::kInvalidArgument, "GSI 0 is reserved"},
                        Case{23, ErrorCode::kInvalidArgument, "GSI 23 is reserved"},
                        Case{2048, ErrorCode::kInvalidArgument, "GSI 2048 out of range"},
                        Case{0xFFFFFFFF, ErrorCode::kInvalidArgument, "out of range"}}) {
    SCOPED_TRACE(c.gsi);
    auto r = irqfd_->NewRouteAt(c.gsi);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, c.code);
    EXPECT_NE(r.error().Message().find(c.words), std::string::npos) << r.error().Message();
  }
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_EQ(*irqfd_->Routes(), before);
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);
  EXPECT_EQ(fake_.triggers().size(), 1u);
  ASSERT_TRUE((*held)->event().Signal());  // the holder still delivers its MSI
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiA)));
}

TEST_F(WhpIrqFdTest, AReleasedRoutesGsiCanBeChosenAgain) {
  auto first = irqfd_->NewRouteAt(300);
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE((*first)->SetMsi(kMsiA));
  ASSERT_TRUE((*first)->Release());
  auto again = irqfd_->NewRouteAt(300);
  ASSERT_TRUE(again.has_value()) << again.error().Message();
  EXPECT_FALSE((*again)->msi().has_value());  // nothing of the old route is left
  EXPECT_TRUE(fake_.triggers().empty());
  EXPECT_EQ(*irqfd_->Routes(), (std::vector<RouteState>{{300, std::nullopt}}));
}

TEST_F(WhpIrqFdTest, RoutesListsEveryLiveRouteByGsiWithItsMsiOrMasked) {
  auto enabled = irqfd_->NewRouteAt(300);
  auto kept_trigger = irqfd_->NewRouteAt(50);
  auto never = irqfd_->NewRouteAt(200);
  auto released = irqfd_->NewRouteAt(250);
  ASSERT_TRUE(enabled && kept_trigger && never && released);
  ASSERT_TRUE((*enabled)->SetMsi(kMsiA));
  ASSERT_TRUE((*enabled)->SetMsi(kMsiC));  // retargeted: the current MSI is listed
  ASSERT_TRUE((*kept_trigger)->SetMsi(kMsiB));
  ASSERT_TRUE((*kept_trigger)->ClearMsi());  // masked, its trigger kept: listed as masked
  ASSERT_TRUE((*released)->SetMsi(kMsiB));
  ASSERT_TRUE((*released)->Release());
  fake_.ClearLog();
  auto routes = irqfd_->Routes();
  ASSERT_TRUE(routes.has_value()) << routes.error().Message();
  EXPECT_EQ(*routes, (std::vector<RouteState>{
                         {50, std::nullopt}, {200, std::nullopt}, {300, kMsiC}}));
  EXPECT_THAT(fake_.log(), IsEmpty());  // a listing makes no WHv call
  EXPECT_EQ(fake_.triggers().size(), 2u);
}

TEST_F(WhpIrqFdTest, RoutesShowWhatTheTriggersDeliverAfterFailedChanges) {
  auto enabled = NewRoute();
  auto masked = NewRoute();
  ASSERT_TRUE(enabled->SetMsi(kMsiA));
  fake_.FailNext("UpdateTriggerParameters", kHrAccessDenied);
  EXPECT_FALSE(enabled->SetMsi(kMsiB));  // keeps delivering kMsiA
  fake_.FailNext("CreateTrigger", kHrOutOfMemory);
  EXPECT_FALSE(masked->SetMsi(kMsiB));  // stays masked
  EXPECT_EQ(*irqfd_->Routes(), (std::vector<RouteState>{{enabled->gsi(), kMsiA},
                                                        {masked->gsi(), std::nullopt}}));
}

TEST_F(WhpIrqFdTest, AfterShutdownRoutesAndNewRouteAtFailWithPartitionGone) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  DeletePartition();
  auto routes = irqfd_->Routes();
  ASSERT_FALSE(routes.has_value());
  EXPECT_EQ(routes.error().code, ErrorCode::kPartitionGone);
  auto at = irqfd_->NewRouteAt(500);
  ASSERT_FALSE(at.has_value());
  EXPECT_EQ(at.error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(irqfd_->allocated_gsis(), 1u);  // only the old route's
}

// Routes reads the table under the lock route changes take: while one thread makes and drops
// a route on GSI 500 and another flips a route on GSI 400 between two MSIs and masked, every
// listing is sorted, always has GSI 400 with one of its three states, and GSI 500 appears
// masked or with its one MSI (never an MSI of another route, never twice).
TEST_F(WhpIrqFdTest, RoutesIsConsistentWhileOtherThreadsChangeRoutes) {
  auto flipping = irqfd_->NewRouteAt(400);
  ASSERT_TRUE(flipping.has_value());
  constexpr int kRounds = 300;
  std::atomic<int> running{2};
  std::atomic<int> change_failures{0};
  std::thread flipper([&] {
    for (int i = 0; i < kRounds; ++i) {
      if (!(*flipping)->SetMsi(kMsiA) || !(*flipping)->SetMsi(kMsiB) ||
          !(*flipping)->ClearMsi()) {
        ++change_failures;
      }
    }
    --running;
  });
  std::thread churner([&] {
    for (int i = 0; i < kRounds; ++i) {
      auto r = irqfd_->NewRouteAt(500);
      if (!r || !(*r)->SetMsi(kMsiC) || !(*r)->Release()) ++change_failures;
    }
    --running;
  });
  int listings = 0;
  int bad = 0;
  while (running.load() > 0 || listings == 0) {
    auto routes = irqfd_->Routes();
    ++listings;
    if (!routes) {
      ++bad;
      continue;
    }
    bool saw_400 = false;
    for (size_t i = 0; i < routes->size(); ++i) {
      const RouteState& r = (*routes)[i];
      if (i > 0 && (*routes)[i - 1].gsi >= r.gsi) ++bad;
      if (r.gsi == 400) {
        saw_400 = true;
        if (r.msi && *r.msi != kMsiA && *r.msi != kMsiB) ++bad;
      } else if (r.gsi == 500) {
        if (r.msi && *r.msi != kMsiC) ++bad;
      } else {
        ++bad;
      }
    }
    if (!saw_400) ++bad;
  }
  flipper.join();
  churner.join();
  EXPECT_EQ(change_failures.load(), 0);
  EXPECT_EQ(bad, 0) << "of " << listings << " listings";
  EXPECT_EQ(*irqfd_->Routes(), (std::vector<RouteState>{{400, std::nullopt}}));
}

}  // namespace
}  // namespace virt::whp::test
