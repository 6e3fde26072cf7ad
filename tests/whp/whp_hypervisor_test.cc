// Checks WhpHypervisor: capability probing, the registry entry's availability reasons, the exact
// partition property sequence, CPUID leaf 0x15 (4.4 and 5.7 GHz hosts) and every failure path.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_cpuid.h"

namespace virt::whp {
namespace {

using test::FakeWhp;
using test::HresultError;

template <typename T>
T As(const std::vector<uint8_t>& bytes) {
  T value{};
  EXPECT_EQ(bytes.size(), sizeof value);
  std::memcpy(&value, bytes.data(), std::min(bytes.size(), sizeof value));
  return value;
}

std::unique_ptr<WhpHypervisor> MustOpen(FakeWhp& fake, WhpOptions options = {}) {
  auto h = WhpHypervisor::Create(fake.api(), options);
  EXPECT_TRUE(h.has_value()) << (h ? "" : h.error().Message());
  return h ? std::move(*h) : nullptr;
}

// ---- CPUID leaf 0x15 -------------------------------------------------------------------------

void ExpectExactLeaf(uint64_t tsc_hz) {
  const WHV_X64_CPUID_RESULT leaf = TscFrequencyLeaf(tsc_hz);
  EXPECT_EQ(leaf.Function, 0x15u);
  EXPECT_NE(leaf.Eax, 0u);
  EXPECT_NE(leaf.Ecx, 0u);
  EXPECT_LE(leaf.Ecx, 25'000'000u) << "crystal above 25 MHz";
  EXPECT_EQ(uint64_t{leaf.Ecx} * leaf.Ebx / leaf.Eax, tsc_hz)
      << "ECX " << leaf.Ecx << " EBX " << leaf.Ebx << " EAX " << leaf.Eax;
  EXPECT_EQ(TscFrequencyFromLeaf(leaf), tsc_hz);
}

TEST(WhpCpuidTest, FrequenciesAbove32BitsAreExact) {
  // A 1 Hz crystal would need EBX = 4.4e9 / 5.7e9, which wraps at 2^32 = 4.29e9.
  static_assert(4'400'000'000ull > 0xFFFFFFFFull && 5'700'000'000ull > 0xFFFFFFFFull);
  ExpectExactLeaf(4'400'000'000);
  ExpectExactLeaf(5'700'000'000);
  EXPECT_EQ(TscFrequencyLeaf(4'400'000'000).Ecx, 25'000'000u);
  EXPECT_EQ(TscFrequencyLeaf(4'400'000'000).Ebx, 176u);
  EXPECT_EQ(TscFrequencyLeaf(5'700'000'000).Ebx, 228u);
}

TEST(WhpCpuidTest, OrdinaryAndOddFrequenciesAreExact) {
  ExpectExactLeaf(3'000'000'000);
  ExpectExactLeaf(2'893'299'000);   // only a 1 kHz-ish divisor
  ExpectExactLeaf(1'000'000'007);   // prime below 2^32: a 1 Hz crystal
  ExpectExactLeaf(4'294'967'296);   // exactly 2^32
}

TEST(WhpCpuidTest, APrimeAbove32BitsIsRoundedToTheNearestKilohertz) {
  const uint64_t prime = 4'400'000'023;  // no divisor fits
  const auto leaf = TscFrequencyLeaf(prime);
  const uint64_t guest = TscFrequencyFromLeaf(leaf);
  EXPECT_LE(guest > prime ? guest - prime : prime - guest, 500u);
}

TEST(WhpCpuidTest, UnknownFrequencyGivesAnEmptyLeaf) {
  const auto leaf = TscFrequencyLeaf(0);
  EXPECT_EQ(leaf.Function, 0x15u);
  EXPECT_EQ(leaf.Eax | leaf.Ebx | leaf.Ecx | leaf.Edx, 0u);
}

// ---- Create / Probe --------------------------------------------------------------------------

TEST(WhpHypervisorTest, CreateReadsTheHostCapabilities) {
  FakeWhp fake;
  fake.set_has_triggers(false);
  auto h = MustOpen(fake);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->name(), "whp");
  EXPECT_TRUE(h->caps().local_apic_emulation);
  EXPECT_FALSE(h->caps().triggers);
}

TEST(WhpHypervisorTest, NoRunningHypervisorIsUnavailable) {
  FakeWhp fake;
  fake.set_hypervisor_present(false);
  auto h = WhpHypervisor::Create(fake.api());
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(h.error().detail.find("HypervisorPresent"), std::string::npos);
}

TEST(WhpHypervisorTest, ACapabilityFailureIsReported) {
  FakeWhp fake;
  fake.FailNext("GetCapability", kHrAccessDenied);
  auto h = WhpHypervisor::Create(fake.api());
  ASSERT_FALSE(h.has_value());
  EXPECT_STREQ(h.error().operation, "WHvGetCapability");
  EXPECT_EQ(h.error().domain, NativeDomain::kHresult);
  EXPECT_EQ(static_cast<int32_t>(h.error().native_code), kHrAccessDenied);
}

TEST(WhpHypervisorTest, ProbeExplainsEveryReason) {
  auto failing = [](int32_t hr) {
    return [hr]() -> Result<std::shared_ptr<WhpApi>> {
      Error e = HresultError("LoadLibraryExW", hr);
      e.code = ErrorCode::kUnavailable;
      e.detail = "WinHvPlatform.dll cannot be loaded";
      return e;
    };
  };
  const Availability dll = WhpHypervisor::Probe(failing(kHrModuleNotFound));
  EXPECT_EQ(dll.why, Unavailability::kDeviceMissing);
  EXPECT_NE(dll.reason.find("WinHvPlatform.dll"), std::string::npos) << dll.reason;
  EXPECT_EQ(WhpHypervisor::Probe(failing(kHrProcNotFound)).why, Unavailability::kApiVersion);
  EXPECT_EQ(WhpHypervisor::Probe(failing(kHrAccessDenied)).why, Unavailability::kOther);

  FakeWhp absent;
  absent.set_hypervisor_present(false);
  EXPECT_EQ(WhpHypervisor::Probe([&] { return Result<std::shared_ptr<WhpApi>>(absent.api()); })
                .why,
            Unavailability::kDeviceMissing);

  FakeWhp present;
  EXPECT_TRUE(WhpHypervisor::Probe([&] { return Result<std::shared_ptr<WhpApi>>(present.api()); })
                  .available());
}

TEST(WhpHypervisorTest, TheRegistryEntryOpensThroughTheLoader) {
  FakeWhp fake;
  Registry registry({WhpBackendInfo([&] { return Result<std::shared_ptr<WhpApi>>(fake.api()); })},
                    [](const char*) { return std::nullopt; });
  auto opened = registry.Open("whp");
  ASSERT_TRUE(opened.has_value()) << opened.error().Message();
  EXPECT_EQ((*opened)->name(), "whp");
}

// ---- CreatePartition -------------------------------------------------------------------------

TEST(WhpHypervisorTest, CreatePartitionSetsEveryPropertyThenSetsUp) {
  FakeWhp fake;
  auto h = MustOpen(fake, {.tsc_hz = 4'400'000'000});
  fake.ClearLog();
  auto partition = h->CreatePartition({.vcpu_count = 3, .irqchip = true});
  ASSERT_TRUE(partition.has_value()) << partition.error().Message();
  const auto log = fake.log();
  const std::vector<std::string> expected_prefix = {
      "CreatePartition",           "SetPartitionProperty(0x1fff)", "SetPartitionProperty(0x1005)",
      "SetPartitionProperty(0x1)", "SetPartitionProperty(0x1003)", "SetPartitionProperty(0x1004)",
      "SetupPartition"};
  ASSERT_GE(log.size(), expected_prefix.size());
  EXPECT_EQ(std::vector<std::string>(log.begin(), log.begin() + expected_prefix.size()),
            expected_prefix);

  const auto props = fake.properties();
  EXPECT_EQ(As<uint32_t>(props.at(0x1fff)), 3u);                        // ProcessorCount
  EXPECT_EQ(As<uint32_t>(props.at(0x1005)), 1u);                        // XApic
  EXPECT_EQ(As<uint64_t>(props.at(0x1)), 0x41u);  // X64CpuidExit 0, X64ApicInitSipiExitTrap 6
  EXPECT_EQ(As<uint32_t>(props.at(0x1003)), 0x15u);                     // CpuidExitList {0x15}
  const auto leaf = As<WHV_X64_CPUID_RESULT>(props.at(0x1004));         // CpuidResultList
  EXPECT_EQ(leaf.Function, 0x15u);
  EXPECT_EQ(TscFrequencyFromLeaf(leaf), 4'400'000'000u);
  EXPECT_EQ(fake.live_partitions().size(), 1u);

  partition->reset();
  fake.ExpectNothingLeaked();
}

TEST(WhpHypervisorTest, WithoutIrqchipTheLocalApicIsNotEmulated) {
  FakeWhp fake;
  auto h = MustOpen(fake);
  auto partition = h->CreatePartition({.vcpu_count = 1, .irqchip = false});
  ASSERT_TRUE(partition.has_value());
  EXPECT_EQ(As<uint32_t>(fake.properties().at(0x1005)), 0u);  // None
  EXPECT_EQ((*partition)->irqfd(), nullptr);
}

TEST(WhpHypervisorTest, AnUnknownClockLeavesOutTheResultList) {
  FakeWhp fake;
  auto h = MustOpen(fake);  // the fake reports no processor clock (0)
  auto partition = h->CreatePartition({});
  ASSERT_TRUE(partition.has_value());
  EXPECT_FALSE(fake.properties().contains(0x1004));
}

TEST(WhpHypervisorTest, BadConfigsFailBeforeAnyPartitionExists) {
  FakeWhp fake;
  auto h = MustOpen(fake);
  fake.ClearLog();
  auto zero = h->CreatePartition({.vcpu_count = 0});
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);

  FakeWhp no_apic;
  no_apic.set_local_apic_emulation(false);
  auto h2 = MustOpen(no_apic);
  no_apic.ClearLog();
  auto p = h2->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(fake.log().empty());
  EXPECT_TRUE(no_apic.log().empty());
}

TEST(WhpHypervisorTest, WithoutIrqchipThereIsNoInitSipiTrap) {
  FakeWhp fake;
  auto h = MustOpen(fake);
  EXPECT_TRUE(h->caps().init_sipi_trap);
  auto partition = h->CreatePartition({.vcpu_count = 2, .irqchip = false});
  ASSERT_TRUE(partition.has_value());
  EXPECT_EQ(As<uint64_t>(fake.properties().at(0x1)), 0x1u);  // X64CpuidExit only
}

TEST(WhpHypervisorTest, SmpWithIrqchipNeedsTheInitSipiTrap) {
  FakeWhp fake;
  fake.set_extended_vm_exits(0x7);  // CPUID, MSR and exception exits, no INIT/SIPI trap
  auto h = MustOpen(fake);
  EXPECT_FALSE(h->caps().init_sipi_trap);
  fake.ClearLog();
  auto smp = h->CreatePartition({.vcpu_count = 2, .irqchip = true});
  ASSERT_FALSE(smp.has_value());
  EXPECT_EQ(smp.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(smp.error().detail.find("X64ApicInitSipiExitTrap"), std::string::npos);
  EXPECT_TRUE(fake.log().empty());
  // One vCPU sends no INIT/SIPI: it runs, without the trap.
  auto up = h->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(As<uint64_t>(fake.properties().at(0x1)), 0x1u);
}

TEST(WhpHypervisorTest, AnUnknownExtendedExitsCapabilityMeansNoTrap) {
  FakeWhp fake;
  // The fourth query, after HypervisorPresent, Features and ProcessorClockFrequency.
  fake.FailNext("GetCapability", kHrInvalidArg, /*skip=*/3);
  auto h = MustOpen(fake);
  ASSERT_NE(h, nullptr);
  EXPECT_FALSE(h->caps().init_sipi_trap);
}

TEST(WhpHypervisorTest, ThePitIsUnavailableAndNeedsIrqchip) {
  FakeWhp fake;
  auto h = MustOpen(fake);
  fake.ClearLog();
  auto pit = h->CreatePartition({.vcpu_count = 1, .irqchip = true, .pit = true});
  ASSERT_FALSE(pit.has_value());
  EXPECT_EQ(pit.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(pit.error().detail.find("PIT"), std::string::npos) << pit.error().detail;
  auto no_chip = h->CreatePartition({.vcpu_count = 1, .irqchip = false, .pit = true});
  ASSERT_FALSE(no_chip.has_value());
  EXPECT_EQ(no_chip.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake.log().empty());  // refused before any partition existed
  fake.ExpectNothingLeaked();
}

TEST(WhpHypervisorTest, ThereAreNoIrqLines) {
  // WHP emulates the local APIC only: no IOAPIC/PIC pins to drive.
  FakeWhp fake;
  auto h = MustOpen(fake);
  for (bool irqchip : {true, false}) {
    auto partition = h->CreatePartition({.vcpu_count = 1, .irqchip = irqchip});
    ASSERT_TRUE(partition.has_value());
    EXPECT_EQ((*partition)->irq_lines(), nullptr);
  }
}

// Each call CreatePartition makes fails once: the error names it and nothing is left behind.
TEST(WhpHypervisorTest, EveryCreatePartitionCallFailingLeaksNothing) {
  for (const char* method : {"CreatePartition", "SetPartitionProperty", "SetupPartition",
                             "CreateVirtualProcessor", "GetVirtualProcessorCpuidOutput",
                             "DeleteVirtualProcessor", "CreateTrigger"}) {
    SCOPED_TRACE(method);
    FakeWhp fake;
    auto h = MustOpen(fake, {.tsc_hz = 5'700'000'000});
    fake.FailNext(method, kHrOutOfMemory);
    auto partition = h->CreatePartition({.vcpu_count = 2, .irqchip = true});
    if (std::string(method) == "CreateTrigger") {
      // Triggers are made per route, not with the partition.
      ASSERT_TRUE(partition.has_value());
      partition->reset();
    } else {
      ASSERT_FALSE(partition.has_value());
      EXPECT_EQ(static_cast<int32_t>(partition.error().native_code), kHrOutOfMemory);
    }
    fake.ExpectNothingLeaked();
  }
}

}  // namespace
}  // namespace virt::whp
