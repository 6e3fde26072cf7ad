// Makes each WhpApi call fail once in a whole VMM scenario (partition, memory, vCPU, run, MSI,
// irqfd routes) and checks the failure is reported and nothing leaks: partition deleted,
// triggers deleted, handles closed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"

namespace virt::whp {
namespace {

using test::FakeWhp;

struct Scenario {
  std::string method;
  bool triggers;
};

std::string Name(const testing::TestParamInfo<Scenario>& info) {
  return info.param.method + (info.param.triggers ? "_Triggers" : "_UserMode");
}

class WhpFailureTest : public testing::TestWithParam<Scenario> {};

// Runs a VMM's life against `fake`, ignoring outcomes, and returns how many calls failed.
int RunScenario(FakeWhp& fake) {
  int failures = 0;
  auto count = [&failures](bool ok) { failures += ok ? 0 : 1; };
  auto h = WhpHypervisor::Create(fake.api(), {.tsc_hz = 4'400'000'000});
  count(h.has_value());
  if (!h) return failures;
  auto partition = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  count(partition.has_value());
  if (!partition) return failures;
  alignas(4096) static uint8_t ram[2 * 4096];
  count((*partition)->MapMemory({0, sizeof ram, ram}).has_value());
  auto vcpu = (*partition)->CreateVcpu(0);
  count(vcpu.has_value());
  if (vcpu) {
    Registers regs;
    regs.rip = 0x1000;
    count((*vcpu)->SetRegisters(regs).has_value());
    count((*vcpu)->Run().has_value());
    (*vcpu)->Cancel();
    count((*vcpu)->Run().has_value());
  }
  count((*partition)->RequestMsi(MsiMessage::Fixed(0, 0x30)).has_value());
  IrqFd* irqfd = (*partition)->irqfd();
  if (irqfd != nullptr) {
    auto kept = irqfd->NewRoute();
    auto released = irqfd->NewRoute();
    count(kept.has_value() && released.has_value());
    if (kept && released) {
      count((*kept)->SetMsi(MsiMessage::Fixed(0, 0x31)).has_value());
      count((*kept)->event().Signal().has_value());
      count((*kept)->SetMsi(MsiMessage::Fixed(0, 0x32)).has_value());
      count((*kept)->ClearMsi().has_value());
      count((*kept)->event().Signal().has_value());
      count((*kept)->SetMsi(MsiMessage::Fixed(0, 0x33)).has_value());
      count((*released)->SetMsi(MsiMessage::Fixed(0, 0x34)).has_value());
      count((*released)->Release().has_value());
    }
    // `kept` is destroyed with the partition still alive, after the vCPU.
  }
  count((*partition)->UnmapMemory(0, sizeof ram).has_value());
  return failures;
}

TEST_P(WhpFailureTest, AFailingCallIsReportedAndLeaksNothing) {
  FakeWhp fake;
  fake.set_has_triggers(GetParam().triggers);
  fake.FailNext(GetParam().method, kHrOutOfMemory);
  const int failures = RunScenario(fake);
  // The injected failure was consumed (the call was made) and surfaced to the VMM, except for
  // calls whose failure has no caller to return to (teardown: reported to stderr/the handler).
  const std::string& m = GetParam().method;
  const bool teardown = m == "DeletePartition" || m == "DeleteVirtualProcessor" ||
                        m == "CancelRunVirtualProcessor" || m == "CloseHandle" ||
                        m == "DeleteTrigger";
  if (!teardown) {
    EXPECT_GE(failures, 1) << "the failure of " << m << " was swallowed";
  }
  if (m == "DeletePartition") {
    // Deleting failed: the partition is reported and stays; everything else is gone.
    EXPECT_EQ(fake.live_partitions().size(), 1u);
    EXPECT_TRUE(fake.open_handles().empty());
    return;
  }
  fake.ExpectNothingLeaked();
}

std::vector<Scenario> Scenarios() {
  std::vector<Scenario> out;
  for (const char* method :
       {"GetCapability", "CreatePartition", "SetPartitionProperty", "SetupPartition",
        "DeletePartition", "MapGpaRange", "UnmapGpaRange", "CreateVirtualProcessor",
        "DeleteVirtualProcessor", "RunVirtualProcessor", "CancelRunVirtualProcessor",
        "SetVirtualProcessorRegisters", "RequestInterrupt"}) {
    out.push_back({method, true});
  }
  for (const char* method : {"CreateTrigger", "UpdateTriggerParameters", "DeleteTrigger",
                             "SetEvent", "CloseHandle"}) {
    out.push_back({method, true});
  }
  out.push_back({"RequestInterrupt", false});  // the user-mode dispatcher's injection
  return out;
}

INSTANTIATE_TEST_SUITE_P(EveryCall, WhpFailureTest, testing::ValuesIn(Scenarios()), Name);

// The whole scenario without failures: every call succeeds and nothing is left.
TEST(WhpFailureTest, TheScenarioPassesCleanlyWithoutFailures) {
  for (bool triggers : {true, false}) {
    FakeWhp fake;
    fake.set_has_triggers(triggers);
    EXPECT_EQ(RunScenario(fake), 0);
    fake.ExpectNothingLeaked();
  }
}

}  // namespace
}  // namespace virt::whp
