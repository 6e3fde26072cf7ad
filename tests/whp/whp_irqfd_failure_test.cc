// WhpTriggerIrqFd when WHP calls fail: every call it makes fails once (FakeWhp::FailNext) at
// every step that makes it; the route is left as it was, a retry succeeds, and nothing leaks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "whp_irqfd_fixture.h"

namespace virt::whp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int32_t kFailure = kHrAccessDenied;  // distinct from the fake's own kHrInvalidArg

// The operation name the real WhpApi reports for `method`.
std::string OpOf(const std::string& method) {
  return method == "SetEvent" || method == "CloseHandle" ? method : "WHv" + method;
}

void ExpectInjected(const Error& error, const std::string& method) {
  EXPECT_EQ(error.code, ErrorCode::kNative);
  EXPECT_EQ(std::string(error.operation), OpOf(method));
  EXPECT_EQ(error.domain, NativeDomain::kHresult);
  EXPECT_EQ(error.native_code, static_cast<int64_t>(static_cast<uint32_t>(kFailure)));
}

// What a failed step must leave exactly as it found it.
struct Snapshot {
  std::optional<MsiMessage> msi;
  std::set<std::pair<void*, void*>> triggers;       // (trigger, event): which triggers exist
  std::optional<WHV_INTERRUPT_CONTROL> delivering;  // the live trigger's control while enabled
  std::set<HANDLE> open_handles;
  size_t delivered = 0;
  uint32_t gsis = 0;
};

// One step of the scenario: a route call and the WHP calls it makes when nothing fails.
struct Step {
  const char* name;
  std::function<Status(IrqFdRoute&)> run;
  std::vector<std::string> calls;
};

const std::vector<Step>& Scenario() {
  using R = IrqFdRoute&;
  static const auto* steps = new std::vector<Step>{
      {"SignalMasked", [](R r) { return r.event().Signal(); }, {}},
      {"EnableA",
       [](R r) { return r.SetMsi(kMsiA); },
       {"CreateTrigger", "SetEvent"}},  // the held signal goes out once the trigger exists
      {"Signal", [](R r) { return r.event().Signal(); }, {"SetEvent"}},
      {"RetargetB", [](R r) { return r.SetMsi(kMsiB); }, {"UpdateTriggerParameters"}},
      {"Mask", [](R r) { return r.ClearMsi(); }, {}},
      {"SignalMaskedAgain", [](R r) { return r.event().Signal(2); }, {}},
      {"UnmaskC", [](R r) { return r.SetMsi(kMsiC); }, {"UpdateTriggerParameters", "SetEvent"}},
      {"SignalAgain", [](R r) { return r.event().Signal(); }, {"SetEvent"}},
  };
  return *steps;
}

// The controls the scenario delivers when nothing fails: the held signal with A, one with A,
// the held pair with C (coalesced), one with C.
std::vector<WHV_INTERRUPT_CONTROL> ScenarioDeliveries() {
  return {ControlOf(kMsiA), ControlOf(kMsiA), ControlOf(kMsiC), ControlOf(kMsiC)};
}

// Every (call, step that makes it) of the scenario.
struct FailureCase {
  std::string method;
  size_t step;
};

void PrintTo(const FailureCase& c, std::ostream* os) {
  *os << c.method << " in step " << Scenario()[c.step].name;
}

std::vector<FailureCase> AllFailureCases() {
  std::vector<FailureCase> cases;
  for (const char* method : {"CreateTrigger", "UpdateTriggerParameters", "SetEvent"}) {
    for (size_t i = 0; i < Scenario().size(); ++i) {
      const auto& calls = Scenario()[i].calls;
      if (std::find(calls.begin(), calls.end(), method) != calls.end()) {
        cases.push_back({method, i});
      }
    }
  }
  return cases;
}

class WhpIrqFdScenarioTest : public WhpIrqFdTest {
 protected:
  Snapshot Take(const IrqFdRoute& route) const {
    Snapshot s;
    s.msi = route.msi();
    s.open_handles = fake_.open_handles();
    s.delivered = Delivered();
    s.gsis = irqfd_->allocated_gsis();
    for (const auto& [handle, trigger] : fake_.triggers()) {
      s.triggers.insert({handle, trigger.event});
      // While masked the trigger's parameters are unobservable (nothing sets its event).
      if (s.msi) s.delivering = trigger.parameters.Interrupt;
    }
    return s;
  }

  static void ExpectSame(const Snapshot& a, const Snapshot& b) {
    EXPECT_EQ(a.msi, b.msi);
    EXPECT_EQ(a.triggers, b.triggers);
    ASSERT_EQ(a.delivering.has_value(), b.delivering.has_value());
    if (a.delivering) {
      EXPECT_TRUE(SameControl(*a.delivering, *b.delivering));
    }
    EXPECT_EQ(a.open_handles, b.open_handles);
    EXPECT_EQ(a.delivered, b.delivered);
    EXPECT_EQ(a.gsis, b.gsis);
  }

  // Runs the scenario on a new route; `fail` (if any) makes its call fail once in its step,
  // which must then have left everything as it was and succeed when run again.
  void Run(const std::optional<FailureCase>& fail) {
    auto route = NewRoute();
    for (size_t i = 0; i < Scenario().size(); ++i) {
      const Step& step = Scenario()[i];
      SCOPED_TRACE(step.name);
      if (fail && fail->step == i) {
        const Snapshot before = Take(*route);
        fake_.FailNext(fail->method, kFailure);
        Status failed = step.run(*route);
        ASSERT_FALSE(failed.has_value()) << "the injected failure was not reported";
        ExpectInjected(failed.error(), fail->method);
        ExpectSame(before, Take(*route));
      }
      fake_.ClearLog();
      Status ok = step.run(*route);
      ASSERT_TRUE(ok.has_value()) << ok.error().Message();
      if (!fail) {
        EXPECT_EQ(fake_.log(), step.calls);
      }
    }
    fake_.ClearLog();
    EXPECT_TRUE(route->Release());
    EXPECT_THAT(fake_.log(), ElementsAre("DeleteTrigger", "CloseHandle"));
    // Every signal still arrived, once, with the MSI of its time.
    const auto delivered = fake_.delivered();
    const auto expected = ScenarioDeliveries();
    ASSERT_EQ(delivered.size(), expected.size());
    for (size_t d = 0; d < delivered.size(); ++d) {
      EXPECT_TRUE(SameControl(delivered[d], expected[d])) << "delivery " << d;
    }
  }
};

class WhpIrqFdFailureTest : public WhpIrqFdScenarioTest,
                            public ::testing::WithParamInterface<FailureCase> {};

TEST_F(WhpIrqFdScenarioTest, MakesExactlyTheListedCallsWhenNothingFails) { Run(std::nullopt); }

TEST(WhpIrqFdFailureCoverage, EveryRouteCallFailsInSomeStep) {
  std::set<std::string> covered;
  for (const FailureCase& c : AllFailureCases()) covered.insert(c.method);
  EXPECT_THAT(covered, ::testing::UnorderedElementsAre("CreateTrigger", "UpdateTriggerParameters",
                                                       "SetEvent"));
}

TEST_P(WhpIrqFdFailureTest, FailsCleanlyAndTheRetrySucceeds) { Run(GetParam()); }

INSTANTIATE_TEST_SUITE_P(EveryRouteCall, WhpIrqFdFailureTest,
                         ::testing::ValuesIn(AllFailureCases()), [](const auto& info) {
                           return info.param.method + "_In" + Scenario()[info.param.step].name;
                         });

// Teardown: a failing WHvDeleteTrigger or CloseHandle, through Release or the destructor, of an
// enabled or a masked route.
struct TeardownCase {
  const char* method;
  bool release;
  bool masked;
};

void PrintTo(const TeardownCase& c, std::ostream* os) {
  *os << c.method << (c.release ? " in Release of " : " in the destructor of ")
      << (c.masked ? "a masked route" : "an enabled route");
}

class WhpIrqFdTeardownFailureTest : public WhpIrqFdTest,
                                    public ::testing::WithParamInterface<TeardownCase> {};

TEST_P(WhpIrqFdTeardownFailureTest, StillClosesAndFreesEverythingAndReportsTheFailure) {
  const TeardownCase c = GetParam();
  const std::string method = c.method;
  auto route = NewRoute();
  const Gsi gsi = route->gsi();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  if (c.masked) {
    ASSERT_TRUE(route->ClearMsi());
  }
  fake_.ClearLog();
  fake_.FailNext(method, kFailure);
  if (c.release) {
    Status released = route->Release();
    ASSERT_FALSE(released.has_value());
    ExpectInjected(released.error(), method);
    EXPECT_THAT(TakeErrors(), IsEmpty());
  } else {
    route.reset();
    EXPECT_THAT(TakeErrors(), ElementsAre(OpOf(method)));
  }
  // CloseHandle is made even after WHvDeleteTrigger failed, and the GSI is free again.
  EXPECT_THAT(fake_.log(), ElementsAre("DeleteTrigger", "CloseHandle"));
  if (c.release) {
    EXPECT_EQ(route->Release().error().code, ErrorCode::kAlreadyReleased);
    fake_.ClearLog();
    ASSERT_TRUE(route->event().Signal());  // detached whatever failed
    EXPECT_THAT(fake_.log(), IsEmpty());
  }
  EXPECT_EQ(irqfd_->allocated_gsis(), 0u);
  EXPECT_EQ(NewRoute()->gsi(), gsi);

  if (method == "DeleteTrigger") {
    EXPECT_EQ(fake_.triggers().size(), 1u);  // inert: WHvDeletePartition removes it
    EXPECT_TRUE(fake_.open_handles().empty());
  } else {
    EXPECT_TRUE(fake_.triggers().empty());
    EXPECT_EQ(fake_.open_handles().size(), 1u);  // still ours: closed when the irqfd state goes
  }
  route.reset();
  DeletePartition();
  irqfd_.reset();  // the last owner of the shared state: closes what CloseHandle refused
  fake_.ExpectNothingLeaked();
}

INSTANTIATE_TEST_SUITE_P(DeleteAndClose, WhpIrqFdTeardownFailureTest,
                         ::testing::Values(TeardownCase{"DeleteTrigger", true, false},
                                           TeardownCase{"DeleteTrigger", true, true},
                                           TeardownCase{"DeleteTrigger", false, false},
                                           TeardownCase{"DeleteTrigger", false, true},
                                           TeardownCase{"CloseHandle", true, false},
                                           TeardownCase{"CloseHandle", true, true},
                                           TeardownCase{"CloseHandle", false, false},
                                           TeardownCase{"CloseHandle", false, true}),
                         [](const auto& info) {
                           return std::string(info.param.method) +
                                  (info.param.release ? "_Release" : "_Destructor") +
                                  (info.param.masked ? "_Masked" : "_Enabled");
                         });

TEST_F(WhpIrqFdTest, WhenUndoingAnEnableFailsTooTheRouteKeepsItsTriggerMasked) {
  auto route = NewRoute();
  ASSERT_TRUE(route->event().Signal());
  fake_.FailNext("SetEvent", kFailure);
  fake_.FailNext("DeleteTrigger", kFailure);
  Status enabled = route->SetMsi(kMsiA);
  ASSERT_FALSE(enabled.has_value());
  ExpectInjected(enabled.error(), "SetEvent");
  EXPECT_THAT(TakeErrors(), ElementsAre("WHvDeleteTrigger"));
  EXPECT_FALSE(route->msi().has_value());
  EXPECT_EQ(fake_.triggers().size(), 1u);
  fake_.ClearLog();
  ASSERT_TRUE(route->event().Signal());  // masked: held
  EXPECT_THAT(fake_.log(), IsEmpty());

  ASSERT_TRUE(route->SetMsi(kMsiA));  // the kept trigger already has A's control
  EXPECT_THAT(fake_.log(), ElementsAre("SetEvent"));
  ASSERT_EQ(Delivered(), 1u);  // both held signals, once
  EXPECT_TRUE(SameControl(fake_.delivered()[0], ControlOf(kMsiA)));
}

TEST_F(WhpIrqFdTest, AHandleCloseHandleRefusedWhileUndoingAnEnableIsClosedLater) {
  auto route = NewRoute();
  ASSERT_TRUE(route->event().Signal());
  fake_.FailNext("SetEvent", kFailure);
  fake_.FailNext("CloseHandle", kFailure);
  ASSERT_FALSE(route->SetMsi(kMsiA).has_value());
  EXPECT_THAT(TakeErrors(), ElementsAre("CloseHandle"));
  EXPECT_TRUE(fake_.triggers().empty());
  EXPECT_EQ(fake_.open_handles().size(), 1u);
  ASSERT_TRUE(route->SetMsi(kMsiA));  // a new trigger; the held signal is delivered once
  EXPECT_EQ(Delivered(), 1u);
  route.reset();
  EXPECT_EQ(fake_.open_handles().size(), 1u);
  DeletePartition();
  irqfd_.reset();
  EXPECT_TRUE(fake_.open_handles().empty());
}

TEST_F(WhpIrqFdTest, ACloseFailingAfterShutdownIsReportedNotHiddenAsPartitionGone) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  DeletePartition();
  fake_.FailNext("CloseHandle", kFailure);
  route.reset();
  EXPECT_THAT(TakeErrors(), ElementsAre("CloseHandle"));
  EXPECT_EQ(fake_.open_handles().size(), 1u);
  irqfd_.reset();  // closed again, successfully: nothing more to report
  EXPECT_TRUE(fake_.open_handles().empty());
}

TEST_F(WhpIrqFdTest, AHandleThatNeverClosesIsReportedOnceMoreAtTheEnd) {
  auto route = NewRoute();
  ASSERT_TRUE(route->SetMsi(kMsiA));
  const HANDLE trigger_event = OnlyTrigger().event;
  fake_.FailNext("CloseHandle", kFailure);
  EXPECT_FALSE(route->Release().has_value());
  DeletePartition();
  fake_.FailNext("CloseHandle", kFailure);
  route.reset();
  irqfd_.reset();
  EXPECT_THAT(TakeErrors(), ElementsAre("CloseHandle"));
  // The irqfd gave up on it; close it here so that the fixture's leak check is about the rest.
  ASSERT_TRUE(fake_.api()->CloseHandle(trigger_event));
}

}  // namespace
}  // namespace virt::whp::test
