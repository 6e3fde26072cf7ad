// WhpTriggerIrqFd over FakeWhp: trigger parameters, delivery, retarget, mask/unmask, teardown
// order, GSIs, batches, Shutdown and the IrqFd contract's errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <type_traits>
#include <vector>

#include "whp_irqfd_fixture.h"

namespace virt::whp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

static_assert(!std::is_copy_constructible_v<WhpTriggerIrqFd>);
static_assert(std::is_nothrow_destructible_v<WhpTriggerIrqFd>);
static_assert(std::is_nothrow_destructible_v<IrqFdRoute>);

TEST(WhpIrqFdCreateTest, NeedsTriggersAnApiAndRoomAfterTheReservedGsis) {
  FakeWhp fake;
  auto partition = fake.api()->CreatePartition();
  ASSERT_TRUE(partition.has_value());
  fake.ClearLog();

  fake.set_has_triggers(false);
  auto no_triggers = WhpTriggerIrqFd::Create(fake.api(), *partition);
  ASSERT_FALSE(no_triggers.has_value());
  EXPECT_EQ(no_triggers.error().code, ErrorCode::kUnavailable);
  fake.set_has_triggers(true);

  auto no_api = WhpTriggerIrqFd::Create(nullptr, *partition);
  ASSERT_FALSE(no_api.has_value());
  EXPECT_EQ(no_api.error().code, ErrorCode::kInvalidArgument);
  auto too_small = WhpTriggerIrqFd::Create(fake.api(), *partition, WhpTriggerIrqFd::kReservedGsis);
  ASSERT_FALSE(too_small.has_value());
  EXPECT_EQ(too_small.error().code, ErrorCode::kInvalidArgument);

  EXPECT_TRUE(WhpTriggerIrqFd::Create(fake.api(), *partition).has_value());
  EXPECT_THAT(fake.log(), IsEmpty());  // creating the irqfd makes no WHv call
  ASSERT_TRUE(fake.api()->DeletePartition(*partition));
  fake.ExpectNothingLeaked();
}

TEST_F(WhpIrqFdTest, NewRouteIsMaskedWithAnUnreservedGsiAndNoWhvCall) {
  auto route = NewRoute();
  auto other = NewRoute();
  EXPECT_GE(route->gsi(), WhpTriggerIrqFd::kReservedGsis);
  EXPECT_NE(route->gsi(), other->gsi());
  EXPECT_FALSE(route->msi().has_value());
  EXPECT_TRUE(route->event().valid());
  ASSERT_TRUE(route->event().Signal());
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_EQ(Delivered(), 0u);
  EXPECT_EQ(irqfd_->push_count(), 0u);
  EXPECT_EQ(irqfd_->allocated_gsis(), 2u);
}

TEST_F(WhpIrqFdTest, FirstSetMsiCreatesAnInterruptTriggerWithTheMsisControl) {
  auto route = NewRoute();
  // Logical destination 0x5a, lowest priority, level triggered, vector 0xec.
  const MsiMessage msi{.address = 0xFEE00000u | (0x5au << 12) | (1u << 2),
                       .data = (1u << 15) | (1u << 14) | (1u << 8) | 0xec};
  ASSERT_TRUE(route->SetMsi(msi));
  EXPECT_THAT(fake_.log(), ElementsAre("CreateTrigger"));
  EXPECT_EQ(route->msi(), msi);
  const FakeWhp::Trigger trigger = OnlyTrigger();
  EXPECT_EQ(trigger.partition, partition_);
  EXPECT_EQ(static_cast<int>(trigger.parameters.TriggerType), 0);  // WHvTriggerTypeInterrupt
  const WHV_INTERRUPT_CONTROL& c = trigger.parameters.Interrupt;
  EXPECT_EQ(c.Type, 1u);             // lowest priority
  EXPECT_EQ(c.DestinationMode, 1u);  // logical
  EXPECT_EQ(c.TriggerMode, 1u);      // level
  EXPECT_EQ(c.Destination, 0x5au);
  EXPECT_EQ(c.Vector, 0xecu);
  EXPECT_TRUE(fake_.open_handles().contains(trigger.event));
}

TEST_F(WhpIrqFdTest, EachSignalIsOneSetEventOnTheTriggersEvent) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  fake_.ClearLog();
  ASSERT_TRUE(route->event().Signal());
  EXPECT_THAT(fake_.log(), ElementsAre("SetEvent"));
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiA)));

  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(route->event().Signal(5));  // one SetEvent: its count coalesces
  EXPECT_THAT(fake_.log(), ElementsAre("SetEvent", "SetEvent", "SetEvent"));
  EXPECT_EQ(Delivered(), 3u);
  EXPECT_EQ(*route->event().TryWait(), 0u);  // nothing was left on the route's event
}

TEST_F(WhpIrqFdTest, RetargetUpdatesTheSameTriggerAndTheNextSignalDeliversTheNewControl) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  const FakeWhp::Trigger before = OnlyTrigger();
  fake_.ClearLog();
  ASSERT_TRUE(route->SetMsi(kMsiB));
  EXPECT_THAT(fake_.log(), ElementsAre("UpdateTriggerParameters"));
  EXPECT_EQ(route->msi(), kMsiB);
  const auto triggers = fake_.triggers();
  ASSERT_EQ(triggers.size(), 1u);
  EXPECT_EQ(triggers.begin()->second.event, before.event);
  EXPECT_EQ(static_cast<int>(triggers.begin()->second.parameters.TriggerType), 0);
  EXPECT_TRUE(SameControl(triggers.begin()->second.parameters.Interrupt, ControlOf(kMsiB)));

  ASSERT_TRUE(route->event().Signal());
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiB)));
}

TEST_F(WhpIrqFdTest, AnMsiWithTheSameControlNeedsNoUpdate) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  fake_.ClearLog();
  const MsiMessage hinted{kMsiA.address | (1u << 3), kMsiA.data};  // redirection hint only
  ASSERT_TRUE(route->SetMsi(hinted));
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_EQ(route->msi(), hinted);
}

TEST_F(WhpIrqFdTest, SignalsBeforeTheFirstSetMsiAreDeliveredOnceRightAfterIt) {
  auto route = NewRoute();
  ASSERT_TRUE(route->event().Signal(2));
  ASSERT_TRUE(route->event().Signal());
  ASSERT_TRUE(route->SetMsi(kMsiA));
  // The trigger exists before the pending count is handed over as one SetEvent.
  EXPECT_THAT(fake_.log(), ElementsAre("CreateTrigger", "SetEvent"));
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiA)));
  EXPECT_EQ(*route->event().TryWait(), 0u);
}

TEST_F(WhpIrqFdTest, MaskHoldsSignalsAndUnmaskDeliversThemOnceWithTheNewMsi) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  const FakeWhp::Trigger trigger = OnlyTrigger();
  fake_.ClearLog();
  ASSERT_TRUE(route->ClearMsi());
  ASSERT_TRUE(route->ClearMsi());  // masking twice is fine
  EXPECT_FALSE(route->msi().has_value());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(route->event().Signal());
  EXPECT_THAT(fake_.log(), IsEmpty());  // nothing reached WHP while masked
  EXPECT_EQ(Delivered(), 0u);
  EXPECT_TRUE(SameTrigger(OnlyTrigger(), trigger));  // the trigger is kept while masked

  ASSERT_TRUE(route->SetMsi(kMsiB));
  // Retargeted first, then the three held signals go out as one SetEvent: none before.
  EXPECT_THAT(fake_.log(), ElementsAre("UpdateTriggerParameters", "SetEvent"));
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiB)));
  EXPECT_EQ(route->msi(), kMsiB);
  EXPECT_EQ(*route->event().TryWait(), 0u);
}

TEST_F(WhpIrqFdTest, UnmaskToTheSameMsiWithNothingPendingMakesNoWhvCall) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  ASSERT_TRUE(route->ClearMsi());
  fake_.ClearLog();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  EXPECT_THAT(fake_.log(), IsEmpty());  // no create, no update, nothing to hand over
  ASSERT_TRUE(route->event().Signal());
  EXPECT_THAT(fake_.log(), ElementsAre("SetEvent"));
  EXPECT_EQ(Delivered(), 1u);
}

TEST_F(WhpIrqFdTest, TheEventIsTheSameHandleAcrossMaskUnmaskAndRetarget) {
  auto route = NewRoute();
  const Event* event = &route->event();
  const Event::NativeHandle handle = route->event().native_handle();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  ASSERT_TRUE(route->SetMsi(kMsiB));
  ASSERT_TRUE(route->ClearMsi());
  ASSERT_TRUE(route->SetMsi(kMsiC));
  EXPECT_EQ(&route->event(), event);
  EXPECT_EQ(route->event().native_handle(), handle);
  ASSERT_TRUE(route->event().Signal());
  ASSERT_EQ(Delivered(), 1u);
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiC)));
}

TEST_F(WhpIrqFdTest, ReleaseDeletesTheTriggerThenClosesItsEventAndFreesTheGsi) {
  auto route = NewRoute();
  const Gsi gsi = route->gsi();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  fake_.ClearLog();
  ASSERT_TRUE(route->Release());
  EXPECT_THAT(fake_.log(), ElementsAre("DeleteTrigger", "CloseHandle"));
  EXPECT_TRUE(fake_.triggers().empty());
  EXPECT_TRUE(fake_.open_handles().empty());
  EXPECT_EQ(irqfd_->allocated_gsis(), 0u);

  EXPECT_EQ(route->Release().error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(route->SetMsi(kMsiA).error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(route->ClearMsi().error().code, ErrorCode::kAlreadyReleased);
  EXPECT_FALSE(route->msi().has_value());
  fake_.ClearLog();
  ASSERT_TRUE(route->event().Signal());  // a device still holding the event reaches nothing
  EXPECT_THAT(fake_.log(), IsEmpty());

  auto next = NewRoute();
  EXPECT_EQ(next->gsi(), gsi);  // the freed GSI is the next one handed out
}

TEST_F(WhpIrqFdTest, DestroyingARouteTearsItDownInTheSameOrder) {
  auto enabled = NewRoute();
  auto masked = NewRoute();
  auto never = NewRoute();
  ASSERT_TRUE(enabled->SetMsi(kMsiA));
  ASSERT_TRUE(masked->SetMsi(kMsiB));
  ASSERT_TRUE(masked->ClearMsi());
  fake_.ClearLog();
  enabled.reset();
  EXPECT_THAT(fake_.log(), ElementsAre("DeleteTrigger", "CloseHandle"));
  fake_.ClearLog();
  masked.reset();  // its kept trigger goes too
  EXPECT_THAT(fake_.log(), ElementsAre("DeleteTrigger", "CloseHandle"));
  fake_.ClearLog();
  never.reset();
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_TRUE(fake_.triggers().empty());
  EXPECT_TRUE(fake_.open_handles().empty());
  EXPECT_EQ(irqfd_->allocated_gsis(), 0u);
}

TEST_F(WhpIrqFdTest, AnInvalidMsiFailsBeforeAnyWhvCallAndChangesNothing) {
  auto route = NewRoute();
  const MsiMessage bad[] = {
      {.address = 0xFED00000, .data = 0x30},     // outside the MSI window
      {.address = 0x1'FEE00000, .data = 0x30},   // upper address bits
      {.address = 0xFEE00000, .data = 2u << 8},  // SMI
      {.address = 0xFEE00000, .data = 7u << 8},  // ExtINT
  };
  for (const MsiMessage& msi : bad) {
    EXPECT_EQ(route->SetMsi(msi).error().code, ErrorCode::kInvalidArgument) << msi.address;
  }
  EXPECT_FALSE(route->msi().has_value());
  ASSERT_TRUE(route->SetMsi(kMsiA));
  fake_.ClearLog();
  for (const MsiMessage& msi : bad) {
    EXPECT_EQ(route->SetMsi(msi).error().code, ErrorCode::kInvalidArgument) << msi.address;
  }
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_EQ(route->msi(), kMsiA);
  EXPECT_TRUE(SameControl(OnlyTrigger().parameters.Interrupt, ControlOf(kMsiA)));
}

TEST_F(WhpIrqFdTest, GsisRunOutWithExhaustedAndComeBack) {
  auto small = WhpTriggerIrqFd::Create(fake_.api(), partition_, WhpTriggerIrqFd::kReservedGsis + 2);
  ASSERT_TRUE(small.has_value());
  auto first = (*small)->NewRoute();
  auto second = (*small)->NewRoute();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ((*first)->gsi() + (*second)->gsi(), 24u + 25u);
  auto third = (*small)->NewRoute();
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, ErrorCode::kExhausted);
  const Gsi freed = (*first)->gsi();
  first->reset();
  auto again = (*small)->NewRoute();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)->gsi(), freed);
  EXPECT_THAT(fake_.log(), IsEmpty());
}

TEST_F(WhpIrqFdTest, BatchesOnlyNestAndChangesTakeEffectAtOnce) {
  EXPECT_EQ(irqfd_->EndBatch().error().code, ErrorCode::kFailedPrecondition);
  auto route = NewRoute();
  irqfd_->BeginBatch();
  {
    RouteBatch inner(*irqfd_);
    ASSERT_TRUE(route->SetMsi(kMsiA));
    EXPECT_THAT(fake_.log(), ElementsAre("CreateTrigger"));  // not deferred to the batch end
    ASSERT_TRUE(route->event().Signal());
    EXPECT_EQ(Delivered(), 1u);
    EXPECT_TRUE(inner.Commit());
  }
  EXPECT_TRUE(irqfd_->EndBatch());
  EXPECT_EQ(irqfd_->EndBatch().error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(irqfd_->push_count(), 0u);
  EXPECT_THAT(fake_.log(), ElementsAre("CreateTrigger", "SetEvent"));
}

TEST_F(WhpIrqFdTest, AfterShutdownEveryCallFailsAndDestructionOnlyClosesTriggerEvents) {
  auto enabled = NewRoute();
  auto masked = NewRoute();
  auto never = NewRoute();
  auto released = NewRoute();
  ASSERT_TRUE(enabled->SetMsi(kMsiA));
  ASSERT_TRUE(masked->SetMsi(kMsiB));
  ASSERT_TRUE(masked->ClearMsi());
  ASSERT_TRUE(released->SetMsi(kMsiC));
  irqfd_->BeginBatch();
  fake_.ClearLog();

  irqfd_->Shutdown();
  irqfd_->Shutdown();  // idempotent
  EXPECT_THAT(fake_.log(), IsEmpty());
  ASSERT_TRUE(enabled->event().Signal());  // the sink is gone: the count stays on the event
  EXPECT_THAT(fake_.log(), IsEmpty());
  EXPECT_EQ(Delivered(), 0u);
  EXPECT_EQ(*enabled->event().TryWait(), 1u);
  for (IrqFdRoute* route : {enabled.get(), masked.get(), never.get()}) {
    EXPECT_EQ(route->SetMsi(kMsiA).error().code, ErrorCode::kPartitionGone);
    EXPECT_EQ(route->ClearMsi().error().code, ErrorCode::kPartitionGone);
    EXPECT_FALSE(route->msi().has_value());
  }
  auto late = irqfd_->NewRoute();
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(irqfd_->EndBatch().error().code, ErrorCode::kPartitionGone);
  EXPECT_THAT(fake_.log(), IsEmpty());

  ASSERT_TRUE(fake_.api()->DeletePartition(partition_));  // takes the triggers with it
  partition_deleted_ = true;
  EXPECT_TRUE(fake_.triggers().empty());
  fake_.ClearLog();
  EXPECT_EQ(released->Release().error().code, ErrorCode::kPartitionGone);
  EXPECT_THAT(fake_.log(), ElementsAre("CloseHandle"));  // no WHvDeleteTrigger any more
  fake_.ClearLog();
  enabled.reset();
  masked.reset();
  never.reset();
  EXPECT_THAT(fake_.log(), ElementsAre("CloseHandle", "CloseHandle"));
  EXPECT_TRUE(fake_.open_handles().empty());
}

TEST_F(WhpIrqFdTest, RoutesOutliveTheIrqFdObject) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  irqfd_.reset();  // the partition is still alive: the route keeps working
  ASSERT_TRUE(route->event().Signal());
  EXPECT_EQ(Delivered(), 1u);
  ASSERT_TRUE(route->SetMsi(kMsiB));
  fake_.ClearLog();
  route.reset();
  EXPECT_THAT(fake_.log(), ElementsAre("DeleteTrigger", "CloseHandle"));
  ASSERT_TRUE(fake_.api()->DeletePartition(partition_));
  partition_deleted_ = true;
}

}  // namespace
}  // namespace virt::whp::test
