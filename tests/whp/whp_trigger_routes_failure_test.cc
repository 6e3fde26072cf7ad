// Issue 12's fault-injection sweep over restoring trigger routes: every WHv call a clean restore
// of a partition state (clock and trigger routes) makes fails once in turn; the restore reports
// it naming the GSI (or the clock), and leaves no route, trigger, trigger event or route event
// behind, every GSI free, so a retry restores everything. Then failures while unwinding.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#ifndef _WIN32
#include <filesystem>
#endif

#include "whp_trigger_routes_fixture.h"

namespace virt::whp::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// What is saved: enabled on 30, masked on 64, enabled on 700 and 1500 (and the clock).
const std::vector<RouteState>& SweptRoutes() {
  static const std::vector<RouteState> routes{
      {30, kMsiA}, {64, std::nullopt}, {700, kMsiB}, {1500, kMsiLogicalLevel}};
  return routes;
}
constexpr Gsi kEnabledGsis[] = {30, 700, 1500};  // in restore order: one WHvCreateTrigger each

PartitionState SweptState() {
  PartitionState state;
  state.backend = "whp";
  state.clock = ClockState{7'000'000'000, 0};
  state.routes = SweptRoutes();
  return state;
}

// Open file descriptors of this process: each route event is one on Linux (an eventfd).
int OpenFds() {
#ifdef _WIN32
  return 0;
#else
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
#endif
}

// The WHv method a log entry names ("SetPartitionProperty(0x100b)" -> "SetPartitionProperty").
std::string MethodOf(const std::string& entry) { return entry.substr(0, entry.find('(')); }

struct RestoreFault {
  std::string method;
  int occurrence;  // fail the call after this many calls of `method` succeeded
};

void PrintTo(const RestoreFault& f, std::ostream* os) { *os << f.method << " #" << f.occurrence; }

std::string RestoreFaultName(const testing::TestParamInfo<RestoreFault>& info) {
  return info.param.method + "_" + std::to_string(info.param.occurrence);
}

// Every call of a clean restore, as (method, occurrence) pairs.
std::vector<RestoreFault> RestoreFaults() {
  TriggerRoutesHost host;
  auto restored = host.state().RestoreState(SweptState());
  EXPECT_TRUE(restored.has_value()) << restored.error().Message();
  std::map<std::string, int> seen;
  std::vector<RestoreFault> out;
  for (const std::string& entry : host.fake().log()) {
    const std::string method = MethodOf(entry);
    out.push_back({method, seen[method]++});
  }
  return out;
}

TEST(WhpTriggerRoutesFailureCoverage, TheSweepCoversTheClockAndEveryTriggerCreation) {
  std::vector<std::string> methods;
  for (const RestoreFault& f : RestoreFaults()) methods.push_back(f.method + "#" +
                                                                  std::to_string(f.occurrence));
  EXPECT_THAT(methods, ElementsAre("SuspendPartitionTime#0", "SetPartitionProperty#0",
                                   "ResumePartitionTime#0", "CreateTrigger#0", "CreateTrigger#1",
                                   "CreateTrigger#2"));
}

class WhpTriggerRoutesFailureTest : public testing::TestWithParam<RestoreFault> {};

TEST_P(WhpTriggerRoutesFailureTest, TheRestoreFailsNamingWhereAndLeavesNothing) {
  const RestoreFault& f = GetParam();
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  const int fds_before = OpenFds();
  host.fake().FailNext(f.method, kHrOutOfMemory, f.occurrence);

  auto restored = host.state().RestoreState(SweptState());
  EXPECT_FALSE(host.fake().failure_pending(f.method)) << f.method << " #" << f.occurrence
                                                      << " was not made";
  ASSERT_FALSE(restored.has_value()) << "the failure of " << f.method << " was swallowed";
  const Error& e = restored.error();
  EXPECT_EQ(e.code, ErrorCode::kNative);
  EXPECT_EQ(e.domain, NativeDomain::kHresult);
  EXPECT_EQ(e.native_code, int64_t{static_cast<uint32_t>(kHrOutOfMemory)});
  EXPECT_EQ(std::string(e.operation), "WHv" + f.method);
  if (f.method == "CreateTrigger") {
    EXPECT_THAT(e.Message(),
                HasSubstr("restoring the route on GSI " +
                          std::to_string(kEnabledGsis[f.occurrence])));
  } else {
    EXPECT_THAT(e.Message(), HasSubstr("clock"));
  }

  // Nothing is left: no route (every GSI free), no trigger, no trigger event, no route event.
  EXPECT_THAT(host.Routes(), IsEmpty());
  EXPECT_TRUE(host.fake().triggers().empty());
  EXPECT_TRUE(host.fake().open_handles().empty());
  EXPECT_EQ(OpenFds(), fds_before);
  // (A failed WHvResumePartitionTime leaves the time suspended: there is no undoing that.)
  if (f.method != "ResumePartitionTime") {
    EXPECT_FALSE(host.fake().time_suspended());
  }
  EXPECT_THAT(host.TakeReports(), IsEmpty());  // the unwinding itself went cleanly
  for (const RouteState& r : SweptRoutes()) {
    auto free_again = host.irqfd().NewRouteAt(r.gsi);
    EXPECT_TRUE(free_again.has_value()) << "GSI " << r.gsi << " is still taken";
  }

  // A retry restores everything.
  auto retried = host.state().RestoreState(SweptState());
  ASSERT_TRUE(retried.has_value()) << retried.error().Message();
  EXPECT_EQ(host.Routes(), SweptRoutes());
  EXPECT_THAT(host.fake().triggers(), SizeIs(3));
  retried->clear();
  host.DestroyPartition();
  host.fake().ExpectNothingLeaked();
}

INSTANTIATE_TEST_SUITE_P(EveryRestoreCall, WhpTriggerRoutesFailureTest,
                         testing::ValuesIn(RestoreFaults()), RestoreFaultName);

// The last trigger creation fails and, while the two routes restored before it are dropped
// again, one WHvDeleteTrigger fails too: that is reported, the trigger's event is closed and
// its GSI freed anyway; the trigger itself is inert until WHvDeletePartition removes it.
TEST(WhpTriggerRoutesUnwindTest, AFailingDeleteWhileUnwindingIsReportedAndFreesTheGsi) {
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  host.fake().FailNext("CreateTrigger", kHrOutOfMemory, 2);
  host.fake().FailNext("DeleteTrigger", kHrAccessDenied);
  auto restored = host.state().RestoreState(SweptState());
  ASSERT_FALSE(restored.has_value());
  EXPECT_THAT(restored.error().Message(), HasSubstr("GSI 1500"));
  EXPECT_FALSE(host.fake().failure_pending("DeleteTrigger"));
  const auto reports = host.TakeReports();
  ASSERT_THAT(reports, SizeIs(1));
  EXPECT_THAT(reports[0], HasSubstr("WHvDeleteTrigger"));
  EXPECT_THAT(host.Routes(), IsEmpty());
  EXPECT_TRUE(host.fake().open_handles().empty());
  EXPECT_THAT(host.fake().triggers(), SizeIs(1));  // inert: no handle of ours can set it
  host.DestroyPartition();
  host.fake().ExpectNothingLeaked();
}

// As above with CloseHandle refusing a trigger event: the handle stays ours and is closed when
// the IrqFd's shared state goes with the partition.
TEST(WhpTriggerRoutesUnwindTest, AFailingCloseWhileUnwindingIsClosedWhenTheIrqFdGoes) {
  TriggerRoutesHost host;
  ASSERT_TRUE(host.ok());
  host.fake().FailNext("CreateTrigger", kHrOutOfMemory, 2);
  host.fake().FailNext("CloseHandle", kHrAccessDenied);
  auto restored = host.state().RestoreState(SweptState());
  ASSERT_FALSE(restored.has_value());
  EXPECT_THAT(restored.error().Message(), HasSubstr("GSI 1500"));
  const auto reports = host.TakeReports();
  ASSERT_THAT(reports, SizeIs(1));
  EXPECT_THAT(reports[0], HasSubstr("CloseHandle"));
  EXPECT_THAT(host.Routes(), IsEmpty());
  EXPECT_TRUE(host.fake().triggers().empty());
  EXPECT_THAT(host.fake().open_handles(), SizeIs(1));
  host.DestroyPartition();
  host.fake().ExpectNothingLeaked();
}

}  // namespace
}  // namespace virt::whp::test
