// Issue 12's fault-injection sweep: makes each WhpApi call of a snapshot scenario (dirty-log read,
// vCPU save and rolled-back restore, partition save and restore into a fresh partition) fail once
// and checks the failure is reported, the vCPU and the tables are as they were, nothing leaks.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"

namespace virt::whp {
namespace {

using test::FakeWhp;

// Plain values only: the test name is built from them, and nothing refers to a fixture.
struct StateScenario {
  std::string method;
  int occurrence;  // fail the call after this many calls of `method` succeeded
  bool triggers;
};

std::string StateScenarioName(const testing::TestParamInfo<StateScenario>& info) {
  return info.param.method + "_" + std::to_string(info.param.occurrence) +
         (info.param.triggers ? "_Triggers" : "_UserMode");
}

constexpr uint64_t kRam = 0x100000;
constexpr uint64_t kRamPages = 4;

// Runs the scenario against `fake` and returns how many operations failed. `failing` is the
// method made to fail (empty for a clean run), for the checks that depend on it.
int RunStateScenario(FakeWhp& fake, bool triggers, const std::string& failing) {
  int failures = 0;
  auto count = [&failures](bool ok) { failures += ok ? 0 : 1; };
  auto h = WhpHypervisor::Create(fake.api(), {.use_triggers = triggers});
  count(h.has_value());
  if (!h) return failures;
  auto partition = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  count(partition.has_value());
  if (!partition) return failures;
  alignas(4096) static uint8_t ram[kRamPages * 4096];
  const bool mapped =
      (*partition)->MapMemory({kRam, sizeof ram, ram, MemoryFlags::kDirtyLog}).has_value();
  count(mapped);
  if (DirtyLog* log = (*partition)->dirty_log(); log != nullptr && mapped) {
    count(log->Enable().has_value());
    fake.MarkDirty(kRam + 4096);
    auto bits = log->ReadAndClear(kRam, sizeof ram);
    count(bits.has_value());
    if (bits) {
      EXPECT_EQ(*bits, std::vector<uint64_t>{0x2});
    } else {
      EXPECT_EQ(fake.dirty_pages().size(), 1u) << "a failed read cleared bits";
    }
  }
  // A route on either kind of IrqFd: both save kRoutes (trigger-backed ones restore through a
  // WHvCreateTrigger, swept by whp_trigger_routes_failure_test.cc).
  std::unique_ptr<IrqFdRoute> route;
  {
    auto r = (*partition)->irqfd()->NewRoute();
    count(r.has_value());
    if (r) {
      route = std::move(*r);
      count(route->SetMsi(MsiMessage::Fixed(0, 0x41)).has_value());
    }
  }
  auto vcpu = (*partition)->CreateVcpu(0);
  count(vcpu.has_value());
  if (vcpu) {
    VcpuStateControl& state = *(*vcpu)->state();
    fake.set_reg(0, WHvX64RegisterRax, 1);
    auto saved = state.SaveState();
    count(saved.has_value());
    if (saved) {
      VcpuState changed = *saved;
      changed.registers->rax = 2;
      (*changed.xsave)[0] ^= 1;
      (*changed.lapic)[0] ^= 1;
      *changed.tsc += 1;
      changed.events->interrupt.shadow = 1;
      const bool restored = state.RestoreState(changed).has_value();
      count(restored);
      if (!restored) {
        auto after = state.SaveState();
        EXPECT_TRUE(after.has_value());
        if (after) {
          EXPECT_EQ(*after, *saved) << "a failed restore changed the vCPU";
        }
      }
    }
  }
  // The fake keeps one set of VP indices for all partitions: VP 0 goes before the fresh
  // partition probes its CPUID through a VP 0 of its own.
  if (vcpu) vcpu->reset();
  auto pstate = (*partition)->state()->SaveState();
  count(pstate.has_value());
  if (pstate) {
    auto fresh = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = true});
    count(fresh.has_value());
    if (fresh) {
      auto routes = (*fresh)->state()->RestoreState(*pstate);
      count(routes.has_value());
      if (!routes) {
        if (failing != "ResumePartitionTime") {
          EXPECT_FALSE(fake.time_suspended());
        }
        if (IrqFd* irqfd = (*fresh)->irqfd(); irqfd != nullptr) {
          EXPECT_TRUE(irqfd->Routes()->empty()) << "a failed restore left routes";
        }
      } else {
        EXPECT_TRUE(pstate->routes.has_value() && pstate->routes->size() == 1u)
            << "the route was not saved";
        EXPECT_EQ(routes->size(), pstate->routes ? pstate->routes->size() : 0u);
      }
    }
  }
  route.reset();
  count((*partition)->UnmapMemory(kRam, sizeof ram).has_value());
  return failures;
}

// The calls this sweep covers: issue 12's, and the register and property calls the state parts
// make (creation-time calls are swept by whp_failure_test.cc).
constexpr const char* kStateMethods[] = {
    "GetPartitionProperty", "SuspendPartitionTime", "ResumePartitionTime",
    "GetVirtualProcessorXsaveState", "SetVirtualProcessorXsaveState",
    "GetVirtualProcessorInterruptControllerState2",
    "SetVirtualProcessorInterruptControllerState2", "QueryGpaRangeDirtyBitmap",
    "GetVirtualProcessorRegisters", "SetVirtualProcessorRegisters", "SetPartitionProperty",
    "MapGpaRange", "UnmapGpaRange"};

class WhpStateFailureTest : public testing::TestWithParam<StateScenario> {};

TEST_P(WhpStateFailureTest, AFailingCallIsReportedAndChangesNothing) {
  const StateScenario& p = GetParam();
  FakeWhp fake;
  fake.set_has_triggers(p.triggers);
  fake.FailNext(p.method, kHrOutOfMemory, p.occurrence);
  const int failures = RunStateScenario(fake, p.triggers, p.method);
  EXPECT_FALSE(fake.failure_pending(p.method)) << p.method << " #" << p.occurrence
                                               << " was not made";
  EXPECT_GE(failures, 1) << "the failure of " << p.method << " #" << p.occurrence
                         << " was swallowed";
  fake.ExpectNothingLeaked();
}

std::vector<StateScenario> StateScenarios() {
  std::vector<StateScenario> out;
  for (bool triggers : {true, false}) {
    FakeWhp clean;
    clean.set_has_triggers(triggers);
    RunStateScenario(clean, triggers, "");
    for (const char* method : kStateMethods) {
      const int n = clean.CountCalls(method);
      for (int k = 0; k < n; ++k) out.push_back({method, k, triggers});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryStateCall, WhpStateFailureTest,
                         testing::ValuesIn(StateScenarios()), StateScenarioName);

TEST(WhpStateFailureTest, TheScenarioPassesCleanlyAndMakesEveryNewCall) {
  for (bool triggers : {true, false}) {
    FakeWhp fake;
    fake.set_has_triggers(triggers);
    EXPECT_EQ(RunStateScenario(fake, triggers, ""), 0);
    fake.ExpectNothingLeaked();
    for (const char* method : kStateMethods) {
      EXPECT_GT(fake.CountCalls(method), 0) << method;
    }
  }
}

}  // namespace
}  // namespace virt::whp
