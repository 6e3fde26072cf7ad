// Trigger-backed routes through WhpPartitionState (issue 12): saved with the clock, restored into
// a fresh partition on their GSIs with their MSIs or masked, delivering through new triggers;
// blobs with taken, reserved, out-of-range or duplicate GSIs or a bad MSI change nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "whp_trigger_routes_fixture.h"

namespace virt::whp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// The source partition's routes: enabled, never enabled, masked after an enable (its trigger
// kept), enabled with a logical level MSI.
struct SavedTriggerRoutes {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  PartitionState state;
};

SavedTriggerRoutes SaveFourTriggerRoutes(TriggerRoutesHost& source) {
  SavedTriggerRoutes out;
  auto a = source.irqfd().NewRoute();
  auto b = source.irqfd().NewRouteAt(700);
  auto c = source.irqfd().NewRouteAt(90);
  auto d = source.irqfd().NewRouteAt(1500);
  EXPECT_TRUE(a && b && c && d);
  if (!(a && b && c && d)) return out;
  EXPECT_TRUE((*a)->SetMsi(kMsiA));
  EXPECT_TRUE((*c)->SetMsi(kMsiB));
  EXPECT_TRUE((*c)->ClearMsi());
  EXPECT_TRUE((*d)->SetMsi(kMsiLogicalLevel));
  for (auto* r : {&a, &b, &c, &d}) out.routes.push_back(std::move(**r));
  auto saved = source.state().SaveState();
  EXPECT_TRUE(saved.has_value()) << saved.error().Message();
  if (!saved) return out;
  auto parsed = ParsePartitionState(SerializePartitionState(*saved), "whp");
  EXPECT_TRUE(parsed.has_value()) << parsed.error().Message();
  EXPECT_EQ(*parsed, *saved);
  out.state = parsed ? *parsed : *saved;
  return out;
}

TEST(WhpTriggerRoutesStateTest, RoutesAreSavedByGsiWithTheirMsisOrMasked) {
  TriggerRoutesHost source;
  ASSERT_TRUE(source.ok());
  SavedTriggerRoutes saved = SaveFourTriggerRoutes(source);
  ASSERT_EQ(saved.routes.size(), 4u);
  const Gsi first = saved.routes[0]->gsi();
  EXPECT_EQ(saved.state.routes, (std::vector<RouteState>{{first, kMsiA},
                                                         {90, std::nullopt},
                                                         {700, std::nullopt},
                                                         {1500, kMsiLogicalLevel}}));
  ASSERT_TRUE(saved.state.clock.has_value());
}

TEST(WhpTriggerRoutesStateTest, AFreshPartitionGetsTheRoutesBackAndTheyDeliverThroughTriggers) {
  TriggerRoutesHost source;
  TriggerRoutesHost target;
  ASSERT_TRUE(source.ok() && target.ok());
  SavedTriggerRoutes saved = SaveFourTriggerRoutes(source);
  ASSERT_EQ(saved.routes.size(), 4u);

  auto restored = target.state().RestoreState(saved.state);
  ASSERT_TRUE(restored.has_value()) << restored.error().Message();
  // The clock, then one WHvCreateTrigger per enabled route; masked ones make no call.
  EXPECT_THAT(target.fake().log(),
              ElementsAre("SuspendPartitionTime", "SetPartitionProperty(0x100b)",
                          "ResumePartitionTime", "CreateTrigger", "CreateTrigger"));
  ASSERT_EQ(restored->size(), 4u);
  for (size_t i = 0; i < restored->size(); ++i) {
    EXPECT_EQ((*restored)[i]->gsi(), (*saved.state.routes)[i].gsi);
    EXPECT_EQ((*restored)[i]->msi(), (*saved.state.routes)[i].msi);
  }
  EXPECT_EQ(target.Routes(), *saved.state.routes);

  // The triggers carry exactly the saved MSIs' WHP controls.
  const auto parameters = target.TriggerParameters();
  ASSERT_EQ(parameters.size(), 2u);
  EXPECT_TRUE(HasTriggerFor(target, kMsiA));
  EXPECT_TRUE(HasTriggerFor(target, kMsiLogicalLevel));
  for (const WHV_TRIGGER_PARAMETERS& p : parameters) {
    EXPECT_EQ(static_cast<int>(p.TriggerType), 0);  // WHvTriggerTypeInterrupt
    if (p.Interrupt.Vector == 0xec) {
      EXPECT_EQ(p.Interrupt.Type, 1u);             // lowest priority
      EXPECT_EQ(p.Interrupt.DestinationMode, 1u);  // logical
      EXPECT_EQ(p.Interrupt.TriggerMode, 1u);      // level
      EXPECT_EQ(p.Interrupt.Destination, 0x5au);
    } else {
      EXPECT_EQ(p.Interrupt.Vector, 0x40u);
      EXPECT_EQ(p.Interrupt.Type, 0u);  // fixed, physical, edge, APIC 1
      EXPECT_EQ(p.Interrupt.DestinationMode, 0u);
      EXPECT_EQ(p.Interrupt.TriggerMode, 0u);
      EXPECT_EQ(p.Interrupt.Destination, 1u);
    }
  }

  // Signalling a restored route's event is one SetEvent on its trigger's event.
  target.fake().ClearLog();
  ASSERT_TRUE((*restored)[0]->event().Signal());
  EXPECT_THAT(target.fake().log(), ElementsAre("SetEvent"));
  ASSERT_EQ(target.fake().delivered().size(), 1u);
  EXPECT_TRUE(SameControl(target.fake().delivered()[0], ControlOf(kMsiA)));
  // A restored masked route holds its signal until it is enabled, then delivers it once.
  IrqFdRoute& masked = *(*restored)[1];
  ASSERT_EQ(masked.gsi(), 90u);
  ASSERT_TRUE(masked.event().Signal());
  EXPECT_EQ(target.fake().delivered().size(), 1u);
  ASSERT_TRUE(masked.SetMsi(kMsiC));
  ASSERT_EQ(target.fake().delivered().size(), 2u);
  EXPECT_TRUE(SameControl(target.fake().delivered()[1], ControlOf(kMsiC)));
  EXPECT_THAT(source.fake().delivered(), IsEmpty());  // nothing went to the old partition

  restored->clear();  // restored routes are whole routes: dropping them deletes their triggers
  EXPECT_TRUE(target.fake().triggers().empty());
  EXPECT_TRUE(target.fake().open_handles().empty());
  EXPECT_THAT(target.Routes(), IsEmpty());
  EXPECT_THAT(target.TakeReports(), IsEmpty());
}

// Restores `routes` (no clock) into `host` and expects `code` with `words` in the message and
// the host's routes, triggers and handles as they were before.
void ExpectRefused(TriggerRoutesHost& host, std::vector<RouteState> routes, ErrorCode code,
                   const std::string& words) {
  const auto routes_before = host.Routes();
  const auto handles_before = host.fake().open_handles();
  const size_t triggers_before = host.fake().triggers().size();
  PartitionState state;
  state.backend = "whp";
  state.routes = std::move(routes);
  auto r = host.state().RestoreState(state);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, code) << r.error().Message();
  EXPECT_THAT(r.error().Message(), HasSubstr(words));
  EXPECT_EQ(host.Routes(), routes_before);
  EXPECT_EQ(host.fake().open_handles(), handles_before);
  EXPECT_EQ(host.fake().triggers().size(), triggers_before);
  EXPECT_THAT(host.TakeReports(), IsEmpty());
}

TEST(WhpTriggerRoutesStateTest, ATakenGsiIsRefusedAndItsHolderKeepsDelivering) {
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  auto holder = host.irqfd().NewRouteAt(100);
  ASSERT_TRUE(holder.has_value());
  ASSERT_TRUE((*holder)->SetMsi(kMsiC));
  // GSI 200 is restored first and dropped again when GSI 100 turns out to be taken.
  ExpectRefused(host, {{200, kMsiA}, {100, kMsiB}}, ErrorCode::kFailedPrecondition,
                "GSI 100");
  EXPECT_TRUE(HasTriggerFor(host, kMsiC));
  EXPECT_FALSE(HasTriggerFor(host, kMsiA));
  host.fake().ClearLog();
  ASSERT_TRUE((*holder)->event().Signal());
  ASSERT_EQ(host.fake().delivered().size(), 1u);
  EXPECT_TRUE(SameControl(host.fake().delivered()[0], ControlOf(kMsiC)));
}

TEST(WhpTriggerRoutesStateTest, OutOfRangeAndReservedGsisAreRefused) {
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  ExpectRefused(host, {{30, kMsiA}, {5000, kMsiB}}, ErrorCode::kInvalidArgument,
                "GSI 5000");
  ExpectRefused(host, {{2048, std::nullopt}}, ErrorCode::kInvalidArgument, "GSI 2048");
  ExpectRefused(host, {{3, std::nullopt}}, ErrorCode::kInvalidArgument, "GSI 3");
  ExpectRefused(host, {{40, kMsiA}, {23, kMsiB}}, ErrorCode::kInvalidArgument, "GSI 23");
  EXPECT_TRUE(host.fake().triggers().empty());
}

TEST(WhpTriggerRoutesStateTest, DuplicateGsisAreRefusedByTheParserAndByRestore) {
  PartitionState state;
  state.backend = "whp";
  state.routes = std::vector<RouteState>{{100, kMsiA}, {100, std::nullopt}};
  auto parsed = ParsePartitionState(SerializePartitionState(state), "whp");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_THAT(parsed.error().Message(), HasSubstr("GSI 100 appears twice"));

  // A state built in memory does not go through the parser: restore refuses the second one.
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  ExpectRefused(host, *state.routes, ErrorCode::kFailedPrecondition, "GSI 100");
  EXPECT_THAT(host.fake().log(), ElementsAre("CreateTrigger", "DeleteTrigger", "CloseHandle"));
}

TEST(WhpTriggerRoutesStateTest, AnMsiWhpCannotTakeIsRefusedBeforeItsTrigger) {
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  // Not in the 0xFEE local-APIC window.
  ExpectRefused(host, {{30, kMsiA}, {31, MsiMessage{0x12345000, 0x40}}},
                ErrorCode::kInvalidArgument, "GSI 31");
  EXPECT_EQ(host.fake().CountCalls("CreateTrigger"), 1);  // GSI 30's only
}

}  // namespace
}  // namespace virt::whp::test
