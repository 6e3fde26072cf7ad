// Checks EnumerateCpuid / ProbeCpuid: every leaf and architectural sub-leaf is read, ranges that
// do not exist are skipped, the caps hold, and the probe at partition creation queries a
// temporary VP 0 with the exact leaf/sub-leaf pairs.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fake_whp_cpuid.h"
#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_cpuid_probe.h"

namespace virt::whp {
namespace {

using test::FakeCpuidModel;
using test::FakeWhp;

// A query over `model` as VP `vp` sees it, recording each (function, index) asked.
CpuidQuery QueryOf(const FakeCpuidModel& model, std::vector<std::pair<uint32_t, uint32_t>>* asked,
                   uint32_t vp = 0) {
  return [&model, asked, vp](uint32_t f, uint32_t i) -> Result<CpuidEntry> {
    asked->push_back({f, i});
    const WHV_CPUID_OUTPUT o = model.Read(f, i, vp);
    return CpuidEntry{.function = f, .index = i, .eax = o.Eax, .ebx = o.Ebx, .ecx = o.Ecx,
                      .edx = o.Edx};
  };
}

TEST(EnumerateCpuidTest, ReadsEveryLeafAndArchitecturalSubleaf) {
  FakeCpuidModel model;
  std::vector<std::pair<uint32_t, uint32_t>> asked;
  auto table = EnumerateCpuid(QueryOf(model, &asked, 3));
  ASSERT_TRUE(table.has_value()) << table.error().Message();
  // Basic 0..0x16 (23 leaves; 4 -> 5 sub-leaves with the type-0 end, 7 -> 2, 0xB -> 3 with the
  // level-0 end, 0xD -> 0, 1 and component 2) and extended 0x80000000..0x80000008.
  EXPECT_EQ(table->size(), 23u - 4u + 5u + 2u + 3u + 3u + 9u);
  ASSERT_NE(table->Find(0), nullptr);
  EXPECT_EQ(table->Find(0)->flags, 0u);
  EXPECT_EQ(table->Find(0)->eax, 0x16u);
  for (uint32_t i = 0; i <= 4; ++i) {
    const CpuidEntry* e = table->Find(4, i);
    ASSERT_NE(e, nullptr) << i;
    EXPECT_EQ(e->flags, kCpuidIndexSignificant);
    EXPECT_EQ(e->index, i);
  }
  EXPECT_EQ(table->Find(4, 4)->eax, 0u);
  EXPECT_NE(table->Find(7, 1), nullptr);
  EXPECT_EQ(table->Find(0xB, 1)->ecx, 0x201u);
  EXPECT_EQ(table->Find(0xB, 2)->edx, 3u);  // the x2APIC ID of VP 3
  EXPECT_EQ(table->Find(0xD, 2)->ebx, 0x240u);
  EXPECT_EQ(table->ApicId(), 3u);
  EXPECT_NE(table->Find(0x80000008), nullptr);
  EXPECT_EQ(table->Find(0x40000000), nullptr);  // EAX 0: no hypervisor range
  EXPECT_TRUE(table->Has(cpuid_feature::kX2Apic));
  EXPECT_TRUE(table->Has(cpuid_feature::kSmep));
  EXPECT_TRUE(table->Has(cpuid_feature::kNx));
  // Asked exactly once each, nothing beyond the ranges (0x40000000 once to find no range).
  EXPECT_EQ(asked.size(), table->size() + 1);
  EXPECT_EQ(std::count(asked.begin(), asked.end(), std::make_pair(0x40000000u, 0u)), 1);
  EXPECT_EQ(std::count(asked.begin(), asked.end(), std::make_pair(0xDu, 3u)), 0);
}

TEST(EnumerateCpuidTest, AHypervisorRangeIsWalkedAndHugeRangesAreCapped) {
  FakeCpuidModel model;
  model.Set(0x40000000, 0, false, {0x40000002, 0x7263694D, 0x666F736F, 0x76482074});
  model.Set(0x0, 0, false, {0xFFFFFFFF, 0, 0, 0});  // a broken max basic leaf
  std::vector<std::pair<uint32_t, uint32_t>> asked;
  auto table = EnumerateCpuid(QueryOf(model, &asked));
  ASSERT_TRUE(table.has_value());
  EXPECT_EQ(table->Find(0x40000000)->ebx, 0x7263694Du);
  EXPECT_NE(table->Find(0x40000002), nullptr);
  EXPECT_EQ(table->Find(0x40000003), nullptr);
  EXPECT_NE(table->Find(0xFF), nullptr);
  EXPECT_EQ(table->Find(0x100), nullptr);
  EXPECT_LE(asked.size(), 0x100u + 64u * 4 + 16u);
}

TEST(EnumerateCpuidTest, TheFirstFailingQueryIsReturned) {
  int calls = 0;
  auto table = EnumerateCpuid([&](uint32_t f, uint32_t) -> Result<CpuidEntry> {
    if (++calls == 5) return test::HresultError("WHvGetVirtualProcessorCpuidOutput", kHrInvalidArg);
    return CpuidEntry{.function = f, .eax = f == 0 ? 0x10u : 0u};
  });
  ASSERT_FALSE(table.has_value());
  EXPECT_STREQ(table.error().operation, "WHvGetVirtualProcessorCpuidOutput");
  EXPECT_EQ(calls, 5);
}

// CreatePartition reads the supported set through a temporary VP 0, after WHvSetupPartition.
TEST(WhpCpuidProbeTest, CreatePartitionProbesATemporaryVp0) {
  FakeWhp fake;
  auto h = WhpHypervisor::Create(fake.api());
  ASSERT_TRUE(h.has_value());
  fake.ClearLog();
  auto partition = (*h)->CreatePartition({.vcpu_count = 2, .irqchip = true});
  ASSERT_TRUE(partition.has_value()) << partition.error().Message();
  const auto log = fake.log();
  auto at = [&](const std::string& entry) {
    return std::find(log.begin(), log.end(), entry) - log.begin();
  };
  const auto setup = at("SetupPartition");
  const auto create = at("CreateVirtualProcessor");
  const auto remove = at("DeleteVirtualProcessor");
  ASSERT_LT(remove, static_cast<long>(log.size()));
  EXPECT_LT(setup, create);
  EXPECT_LT(create, at("GetVirtualProcessorCpuidOutput(0, 0x0.0)"));
  EXPECT_LT(at("GetVirtualProcessorCpuidOutput(0, 0x80000008.0)"), remove);
  for (const char* entry : {"GetVirtualProcessorCpuidOutput(0, 0x4.4)",
                            "GetVirtualProcessorCpuidOutput(0, 0x7.1)",
                            "GetVirtualProcessorCpuidOutput(0, 0xb.2)",
                            "GetVirtualProcessorCpuidOutput(0, 0xd.2)",
                            "GetVirtualProcessorCpuidOutput(0, 0x15.0)",
                            "GetVirtualProcessorCpuidOutput(0, 0x40000000.0)"}) {
    EXPECT_LT(at(entry), remove) << entry;
  }
  EXPECT_EQ(fake.CountCalls("GetVirtualProcessorCpuidOutput"), 42);
  EXPECT_TRUE(fake.live_vps().empty());  // the VMM's CreateVcpu(0) makes VP 0 afresh
  EXPECT_TRUE((*partition)->CreateVcpu(0).has_value());
}

TEST(WhpCpuidProbeTest, EachProbeCallFailingFailsCreationAndLeaksNothing) {
  for (const char* method :
       {"CreateVirtualProcessor", "GetVirtualProcessorCpuidOutput", "DeleteVirtualProcessor"}) {
    SCOPED_TRACE(method);
    FakeWhp fake;
    auto h = WhpHypervisor::Create(fake.api());
    ASSERT_TRUE(h.has_value());
    fake.FailNext(method, kHrOutOfMemory, std::string(method) == "GetVirtualProcessorCpuidOutput"
                                              ? 7 : 0);
    auto partition = (*h)->CreatePartition({.vcpu_count = 2, .irqchip = true});
    ASSERT_FALSE(partition.has_value());
    EXPECT_EQ(static_cast<int32_t>(partition.error().native_code), kHrOutOfMemory);
    fake.ExpectNothingLeaked();
  }
}

}  // namespace
}  // namespace virt::whp
