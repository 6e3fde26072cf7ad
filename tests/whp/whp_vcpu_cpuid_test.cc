// Checks the WHP CPUID policy: the supported and default tables, per-vCPU tables set before the
// first Run, the CpuidExitList they need (exact payload, only grown, unchanged on failure), and
// the answers CPUID exits get: changed bits from the table, live bits from WHP.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_cpuid.h"
#include "whp_vcpu_cpuid.h"

namespace virt::whp {
namespace {

using test::FakeWhp;

constexpr uint64_t kTscHz = 4'400'000'000;
constexpr uint32_t kOsxsave = 1u << 27;

std::vector<uint32_t> ExitList(const FakeWhp& fake) {
  const auto props = fake.properties();
  const auto& bytes = props.at(WHvPartitionPropertyCodeCpuidExitList);
  std::vector<uint32_t> list(bytes.size() / sizeof(uint32_t));
  std::memcpy(list.data(), bytes.data(), list.size() * sizeof(uint32_t));
  return list;
}

class WhpVcpuCpuidTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    auto h = WhpHypervisor::Create(fake_.api(), {.tsc_hz = kTscHz});
    ASSERT_TRUE(h.has_value());
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = 2, .irqchip = true});
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
    for (uint32_t i = 0; i < 2; ++i) {
      auto v = partition_->CreateVcpu(i);
      ASSERT_TRUE(v.has_value());
      vcpus_[i] = std::move(*v);
    }
    // vCPU 1 is an AP waiting for SIPI; these tests run it directly.
    ASSERT_TRUE(vcpus_[1]->mp_state()->SetMpState(MpState::kRunnable).has_value());
  }

  Cpuid TableOf(uint32_t i) {
    auto t = vcpus_[i]->cpuid()->GetCpuid();
    EXPECT_TRUE(t.has_value());
    return t.value_or(Cpuid{});
  }

  // Runs a CPUID(function, index) exit on vCPU i with WHP's own answer (the fake's model, plus
  // `live_ecx` bits WHP computes at run time) and returns what the guest got.
  CpuidEntry RunCpuid(uint32_t i, uint32_t function, uint32_t index, uint32_t live_ecx = 0) {
    const WHV_CPUID_OUTPUT d = fake_.CpuidOf(i, function, index);
    WHV_RUN_VP_EXIT_CONTEXT exit{};
    exit.ExitReason = WHvRunVpExitReasonX64Cpuid;
    exit.VpContext.Rip = 0x1000;
    exit.VpContext.InstructionLength = 2;
    exit.CpuidAccess.Rax = function;
    exit.CpuidAccess.Rcx = index;
    exit.CpuidAccess.DefaultResultRax = d.Eax;
    exit.CpuidAccess.DefaultResultRbx = d.Ebx;
    exit.CpuidAccess.DefaultResultRcx = d.Ecx | live_ecx;
    exit.CpuidAccess.DefaultResultRdx = d.Edx;
    fake_.QueueExit(i, exit);
    auto run = vcpus_[i]->Run();  // the CPUID is answered inside; then the fake's HLT
    EXPECT_TRUE(run.has_value() && std::holds_alternative<HaltExit>(*run));
    EXPECT_EQ(fake_.reg(i, WHvX64RegisterRip).Reg64, 0x1002u);
    auto r = [&](WHV_REGISTER_NAME n) { return static_cast<uint32_t>(fake_.reg(i, n).Reg64); };
    return {.function = function, .index = index, .eax = r(WHvX64RegisterRax),
            .ebx = r(WHvX64RegisterRbx), .ecx = r(WHvX64RegisterRcx),
            .edx = r(WHvX64RegisterRdx)};
  }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<Vcpu> vcpus_[2];
};

TEST_F(WhpVcpuCpuidTest, SupportedIsWhatAVpPresentsWithTheExactTscLeaf) {
  PartitionCpuid* cpuid = partition_->cpuid();
  ASSERT_NE(cpuid, nullptr);
  auto supported = cpuid->SupportedCpuid();
  ASSERT_TRUE(supported.has_value()) << supported.error().Message();
  EXPECT_EQ(supported->ApicId(), 0u);
  EXPECT_TRUE(supported->Has(cpuid_feature::kX2Apic));
  const CpuidEntry* tsc = supported->Find(0x15);
  ASSERT_NE(tsc, nullptr);
  WHV_X64_CPUID_RESULT leaf{};
  leaf.Function = 0x15;
  leaf.Eax = tsc->eax;
  leaf.Ebx = tsc->ebx;
  leaf.Ecx = tsc->ecx;
  EXPECT_EQ(TscFrequencyFromLeaf(leaf), kTscHz);
  const WHV_CPUID_OUTPUT leaf7 = fake_.CpuidOf(0, 7, 0);
  ASSERT_NE(supported->Find(7, 0), nullptr);
  EXPECT_EQ(supported->Find(7, 0)->ebx, leaf7.Ebx);

  auto one = cpuid->DefaultCpuid(1);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->ApicId(), 1u);
  EXPECT_EQ(one->Find(1)->ebx >> 24, 1u);
  Cpuid expected = *supported;
  expected.SetApicId(1);
  EXPECT_EQ(*one, expected);
  auto bad = cpuid->DefaultCpuid(2);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(WhpVcpuCpuidTest, EachVcpuStartsWithItsDefault) {
  for (uint32_t i = 0; i < 2; ++i) {
    auto want = partition_->cpuid()->DefaultCpuid(i);
    ASSERT_TRUE(want.has_value());
    EXPECT_EQ(TableOf(i), *want);
  }
  EXPECT_EQ(ExitList(fake_), (std::vector<uint32_t>{0x15}));
}

TEST_F(WhpVcpuCpuidTest, AHiddenFeatureExitsAndReadsHiddenWhileLiveBitsStay) {
  Cpuid table = TableOf(1);
  ASSERT_TRUE(table.SetFeature(cpuid_feature::kX2Apic, false).has_value());
  fake_.ClearLog();
  ASSERT_TRUE(vcpus_[1]->cpuid()->SetCpuid(table).has_value());
  EXPECT_EQ(fake_.log(), (std::vector<std::string>{"SetPartitionProperty(0x1003)"}));
  EXPECT_EQ(ExitList(fake_), (std::vector<uint32_t>{0x1, 0x15}));
  EXPECT_EQ(TableOf(1), table);

  const WHV_CPUID_OUTPUT whp = fake_.CpuidOf(1, 1, 0);
  const CpuidEntry got = RunCpuid(1, 1, 0, kOsxsave);
  EXPECT_EQ(got.ecx, (whp.Ecx | kOsxsave) & ~(1u << 21));  // hidden; OSXSAVE as WHP says
  EXPECT_EQ(got.eax, whp.Eax);
  EXPECT_EQ(got.ebx, whp.Ebx);  // APIC ID 1 from WHP
  EXPECT_EQ(got.edx, whp.Edx);
  // vCPU 0 exits on leaf 1 now too, and gets WHP's answer unchanged.
  const CpuidEntry other = RunCpuid(0, 1, 0, kOsxsave);
  EXPECT_EQ(other.ecx, fake_.CpuidOf(0, 1, 0).Ecx | kOsxsave);
}

TEST_F(WhpVcpuCpuidTest, SubleavesAddedAndRemovedLeavesAreAnswered) {
  Cpuid table = TableOf(0);
  ASSERT_TRUE(table.SetFeature(cpuid_feature::kSmep, false).has_value());
  table.Set({.function = 0x40000000, .eax = 0x40000001, .ebx = 0x4D4D4D4D});
  ASSERT_TRUE(table.Remove(0x80000001));
  ASSERT_TRUE(vcpus_[0]->cpuid()->SetCpuid(table).has_value());
  EXPECT_EQ(ExitList(fake_), (std::vector<uint32_t>{0x7, 0x15, 0x40000000, 0x80000001}));

  const CpuidEntry smep = RunCpuid(0, 7, 0);
  EXPECT_EQ(smep.ebx, fake_.CpuidOf(0, 7, 0).Ebx & ~(1u << 7));
  const CpuidEntry sub1 = RunCpuid(0, 7, 1);  // unchanged sub-leaf: WHP's answer
  EXPECT_EQ(sub1.eax, fake_.CpuidOf(0, 7, 1).Eax);
  const CpuidEntry added = RunCpuid(0, 0x40000000, 0);
  EXPECT_EQ(added.eax, 0x40000001u);
  EXPECT_EQ(added.ebx, 0x4D4D4D4Du);
  const CpuidEntry removed = RunCpuid(0, 0x80000001, 0);
  EXPECT_EQ(removed.eax | removed.ebx | removed.ecx | removed.edx, 0u);
}

TEST_F(WhpVcpuCpuidTest, TheSameExitListIsNotWrittenTwice) {
  Cpuid table = TableOf(0);
  ASSERT_TRUE(table.SetFeature(cpuid_feature::kTscDeadline, false).has_value());
  ASSERT_TRUE(vcpus_[0]->cpuid()->SetCpuid(table).has_value());
  Cpuid other = TableOf(1);
  ASSERT_TRUE(other.SetFeature(cpuid_feature::kX2Apic, false).has_value());
  fake_.ClearLog();
  ASSERT_TRUE(vcpus_[1]->cpuid()->SetCpuid(other).has_value());  // leaf 1 exits already
  ASSERT_TRUE(vcpus_[0]->cpuid()->SetCpuid(TableOf(0)).has_value());
  EXPECT_TRUE(fake_.log().empty());
  // Reverting to the default keeps the list: the leaf exits and gets WHP's answer.
  ASSERT_TRUE(vcpus_[0]->cpuid()->SetCpuid(*partition_->cpuid()->DefaultCpuid(0)).has_value());
  EXPECT_EQ(ExitList(fake_), (std::vector<uint32_t>{0x1, 0x15}));
  EXPECT_EQ(RunCpuid(0, 1, 0).ecx, fake_.CpuidOf(0, 1, 0).Ecx);
}

TEST_F(WhpVcpuCpuidTest, AfterTheFirstRunTheTableIsFixed) {
  ASSERT_TRUE(vcpus_[0]->Run().has_value());
  Cpuid table = TableOf(0);
  ASSERT_TRUE(table.SetFeature(cpuid_feature::kX2Apic, false).has_value());
  fake_.ClearLog();
  auto s = vcpus_[0]->cpuid()->SetCpuid(table);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(fake_.log().empty());
  EXPECT_TRUE(TableOf(0).Has(cpuid_feature::kX2Apic));
}

TEST_F(WhpVcpuCpuidTest, AnApicIdOtherThanTheIndexIsRefused) {
  Cpuid table = TableOf(1);
  table.SetApicId(0);
  fake_.ClearLog();
  auto s = vcpus_[1]->cpuid()->SetCpuid(table);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().detail.find("APIC ID"), std::string::npos);
  EXPECT_TRUE(fake_.log().empty());
  EXPECT_EQ(TableOf(1).ApicId(), 1u);
}

TEST_F(WhpVcpuCpuidTest, AFailedExitListWriteKeepsTableAndList) {
  const Cpuid before = TableOf(1);
  Cpuid table = before;
  ASSERT_TRUE(table.SetFeature(cpuid_feature::kX2Apic, false).has_value());
  fake_.FailNext("SetPartitionProperty", kHrAccessDenied);
  auto s = vcpus_[1]->cpuid()->SetCpuid(table);
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "WHvSetPartitionProperty");
  EXPECT_EQ(static_cast<int32_t>(s.error().native_code), kHrAccessDenied);
  EXPECT_EQ(TableOf(1), before);
  EXPECT_EQ(ExitList(fake_), (std::vector<uint32_t>{0x15}));
  ASSERT_TRUE(vcpus_[1]->cpuid()->SetCpuid(table).has_value());  // and it can be retried
  EXPECT_EQ(ExitList(fake_), (std::vector<uint32_t>{0x1, 0x15}));
}

TEST(WhpVcpuCpuidHostTest, WithoutCpuidOutputThereIsNoCpuidControlButLeaf15StillWorks) {
  FakeWhp fake;
  fake.set_has_cpuid_output(false);
  auto h = WhpHypervisor::Create(fake.api(), {.tsc_hz = kTscHz});
  ASSERT_TRUE(h.has_value());
  auto partition = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(partition.has_value());
  EXPECT_EQ((*partition)->cpuid(), nullptr);
  EXPECT_EQ(fake.CountCalls("GetVirtualProcessorCpuidOutput"), 0);
  auto vcpu = (*partition)->CreateVcpu(0);
  ASSERT_TRUE(vcpu.has_value());
  EXPECT_EQ((*vcpu)->cpuid(), nullptr);
  WHV_RUN_VP_EXIT_CONTEXT exit{};
  exit.ExitReason = WHvRunVpExitReasonX64Cpuid;
  exit.CpuidAccess.Rax = 0x15;
  exit.CpuidAccess.DefaultResultRbx = 0xDEAD;
  fake.QueueExit(0, exit);
  ASSERT_TRUE((*vcpu)->Run().has_value());
  EXPECT_EQ(fake.reg(0, WHvX64RegisterRbx).Reg64, TscFrequencyLeaf(kTscHz).Ebx);
}

TEST(AnswerCpuidTest, EachCaseOfTheRule) {
  const CpuidEntry live{.function = 1, .eax = 0xA, .ebx = 0xB, .ecx = 0xF0, .edx = 0xD};
  Cpuid baseline(std::vector<CpuidEntry>{{.function = 1, .ecx = 0x30}, {.function = 2, .eax = 9},
                                         {.function = 0x15, .eax = 1, .ebx = 2, .ecx = 3}});
  Cpuid table(std::vector<CpuidEntry>{{.function = 1, .ecx = 0x21},  // bit 4 off, bit 0 on
                                      {.function = 3, .eax = 7},
                                      {.function = 0x15, .eax = 1, .ebx = 2, .ecx = 3}});
  const CpuidEntry merged = AnswerCpuid(table, baseline, 1, 0, live);
  EXPECT_EQ(merged.ecx, (0xF0u & ~0x11u) | 0x01u);  // only bits 0 and 4 come from the table
  EXPECT_EQ(merged.eax, 0xAu);
  EXPECT_EQ(AnswerCpuid(table, baseline, 2, 0, live).eax, 0u);  // removed
  EXPECT_EQ(AnswerCpuid(table, baseline, 3, 0, live).eax, 7u);  // added
  EXPECT_EQ(AnswerCpuid(table, baseline, 4, 0, live).ebx, 0xBu);  // unknown: WHP's
  EXPECT_EQ(AnswerCpuid(table, baseline, 0x15, 0, {.ebx = 0xDEAD}).ebx, 2u);  // exact TSC
  EXPECT_EQ(DifferingFunctions(table, baseline), (std::set<uint32_t>{1, 2, 3}));
  EXPECT_TRUE(DifferingFunctions(baseline, baseline).empty());
}

}  // namespace
}  // namespace virt::whp
