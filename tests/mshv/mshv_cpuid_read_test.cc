// MSHV CPUID reads: a VP's table through HVCALL_GET_VP_CPUID_VALUES (exact batches, sub-leaf and
// range rules), GetCpuid before and after SetCpuid, and the partition's supported/default sets.
#include <cstring>

#include "mshv_cpuid.h"
#include "mshv_hvcall.h"
#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

class MshvCpuidReadTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{2, true});
  }
  void TearDown() override {
    vcpus_.clear();
    partition_.reset();
    MshvTest::TearDown();
  }
  Vcpu& Create(uint32_t index) {
    auto v = partition_->CreateVcpu(index);
    EXPECT_TRUE(v.has_value());
    vcpus_.push_back(std::move(*v));
    return *vcpus_.back();
  }
  int VpFd(uint32_t index) {
    for (auto& [fd, vp] : fake_.vps()) {
      if (vp.index == index) return fd;
    }
    return -1;
  }
  // The (EAX, ECX) pairs of one recorded HVCALL_GET_VP_CPUID_VALUES, checking its framing.
  std::vector<std::pair<uint32_t, uint32_t>> Leaves(const HvcallRecord& rec, uint32_t vp_index) {
    EXPECT_EQ(rec.call.code, 0x00f4);
    EXPECT_GT(rec.call.reps, 0);
    EXPECT_LE(rec.call.reps, kMaxCpuidLeavesPerCall);
    EXPECT_EQ(rec.call.in_sz, 24 + 24 * rec.call.reps);
    EXPECT_EQ(rec.call.out_sz, 16 * rec.call.reps);
    std::vector<uint8_t> header(24, 0);
    PutLe(header.data(), 8, vp_index, 4);
    PutLe(header.data(), 12, 0x3, 4);  // USE_VP_XFEM_XSS | APPLY_REGISTERED_VALUES
    EXPECT_EQ(std::vector<uint8_t>(rec.input.begin(), rec.input.begin() + 24), header);
    std::vector<std::pair<uint32_t, uint32_t>> out;
    for (size_t i = 0; i < rec.call.reps; ++i) {
      uint32_t eax, ecx;
      std::memcpy(&eax, rec.input.data() + 24 + 24 * i, 4);
      std::memcpy(&ecx, rec.input.data() + 28 + 24 * i, 4);
      for (size_t b = 8; b < 24; ++b) EXPECT_EQ(rec.input[24 + 24 * i + b], 0);  // xfem, xss
      out.emplace_back(eax, ecx);
    }
    return out;
  }

  std::vector<std::unique_ptr<Vcpu>> vcpus_;
};

using Pairs = std::vector<std::pair<uint32_t, uint32_t>>;

TEST_F(MshvCpuidReadTest, GetCpuidBeforeSetCpuidReadsTheHypervisorsAnswersInTwoCalls) {
  Vcpu& ap = Create(1);
  fake_.hvcalls().clear();
  auto cpuid = ap.cpuid()->GetCpuid();
  ASSERT_TRUE(cpuid.has_value()) << cpuid.error().Message();
  ASSERT_EQ(fake_.hvcalls().size(), 2u);
  EXPECT_EQ(fake_.hvcalls()[0].fd, VpFd(1));
  EXPECT_EQ(Leaves(fake_.hvcalls()[0], 1), (Pairs{{0, 0}, {0x40000000, 0}, {0x80000000, 0}}));
  // Leaves 1..0xD (4: 8 sub-leaves, 7 and 0xB: 4, 0xD: 64), 0x40000001..5, 0x80000001..8.
  const Pairs second = Leaves(fake_.hvcalls()[1], 1);
  EXPECT_EQ(second.size(), 3u + 8 + 2 + 4 + 3 + 4 + 1 + 64 + 5 + 8);
  EXPECT_EQ(second.front(), std::make_pair(1u, 0u));
  EXPECT_EQ(second[3], std::make_pair(4u, 0u));
  EXPECT_EQ(second[10], std::make_pair(4u, 7u));
  EXPECT_EQ(second.back(), std::make_pair(0x80000008u, 0u));

  // Index 0 of every leaf (zeros included), non-zero sub-leaves only, in order.
  EXPECT_EQ(cpuid->size(), 14u + 5 + 6 + 9);
  EXPECT_EQ(cpuid->entries().front(), (CpuidEntry{0, 0, 0, 0xD, 0x756E6547, 0x6C65746E, 0x49656E69}));
  EXPECT_EQ(cpuid->entries().back(), (CpuidEntry{0x80000008, 0, 0, 0x3030, 0, 0, 0}));
  ASSERT_NE(cpuid->Find(2), nullptr);
  EXPECT_EQ(*cpuid->Find(2), (CpuidEntry{2, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(cpuid->Find(7, 0)->flags, kCpuidIndexSignificant);
  EXPECT_EQ(cpuid->Find(7, 1)->eax, 0x10u);
  EXPECT_EQ(cpuid->Find(7, 2), nullptr);  // all zeros: no such sub-leaf
  EXPECT_EQ(cpuid->Find(0xD, 2)->ebx, 0x240u);
  EXPECT_EQ(cpuid->Find(1)->flags, 0u);
  EXPECT_EQ(cpuid->ApicId(), 1u);  // the hypervisor's per-VP answer
  EXPECT_TRUE(cpuid->Has(cpuid_feature::kX2Apic));
  EXPECT_TRUE(cpuid->Has(cpuid_feature::kNx));
  for (size_t i = 1; i < cpuid->size(); ++i) {
    const CpuidEntry& a = cpuid->entries()[i - 1];
    const CpuidEntry& b = cpuid->entries()[i];
    EXPECT_TRUE(a.function < b.function || (a.function == b.function && a.index < b.index));
  }
}

TEST_F(MshvCpuidReadTest, GetCpuidAfterSetCpuidIsTheTableWithoutAHypercall) {
  Vcpu& bsp = Create(0);
  const CpuidEntry entries[] = {{1, 0, 0, 1, 2, 3, 4}, {0x40000000, 0, 0, 0, 0, 0, 0}};
  ASSERT_TRUE(bsp.cpuid()->SetCpuid(Cpuid(entries)));
  fake_.hvcalls().clear();
  auto got = bsp.cpuid()->GetCpuid();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, Cpuid(entries));
  EXPECT_TRUE(fake_.hvcalls().empty());
}

TEST_F(MshvCpuidReadTest, LargeRangesAreCappedAndSplitIntoBatches) {
  Vcpu& bsp = Create(0);
  fake_.host_cpuid()[{0, 0}].eax = 0xFFFF;              // claims 64K basic leaves
  fake_.host_cpuid()[{0x40000000, 0}].eax = 0x1000;    // below its base: no hypervisor range
  fake_.host_cpuid()[{0x80000000, 0}].eax = 0x80000100;
  fake_.hvcalls().clear();
  auto cpuid = bsp.cpuid()->GetCpuid();
  ASSERT_TRUE(cpuid.has_value()) << cpuid.error().Message();
  size_t leaves = 0;
  for (size_t i = 1; i < fake_.hvcalls().size(); ++i) {
    const Pairs p = Leaves(fake_.hvcalls()[i], 0);
    if (i + 1 < fake_.hvcalls().size()) {
      EXPECT_EQ(p.size(), kMaxCpuidLeavesPerCall);
    }
    leaves += p.size();
  }
  size_t want = 0;  // 0x1..0x3F and 0x80000001..0x8000003F, sub-leaf functions expanded
  for (uint32_t base : {0u, 0x80000000u}) {
    for (uint32_t f = base + 1; f < base + kMaxCpuidLeavesPerRange; ++f) {
      uint32_t count = 1;
      for (const CpuidSubleafRange& r : CpuidSubleafRanges()) {
        if (r.function == f) count = r.count;
      }
      want += count;
    }
  }
  EXPECT_EQ(leaves, want);
  EXPECT_EQ(fake_.hvcalls().size(),
            1 + (want + kMaxCpuidLeavesPerCall - 1) / kMaxCpuidLeavesPerCall);
  EXPECT_GE(fake_.hvcalls().size(), 3u);  // really split
  EXPECT_NE(cpuid->Find(0x3F), nullptr);
  EXPECT_EQ(cpuid->Find(0x40), nullptr);
  EXPECT_NE(cpuid->Find(0x40000000), nullptr);
  EXPECT_EQ(cpuid->Find(0x40000001), nullptr);
  EXPECT_NE(cpuid->Find(0x8000003F), nullptr);
  EXPECT_EQ(cpuid->Find(0x80000040), nullptr);
}

TEST_F(MshvCpuidReadTest, AHypervisorErrorIsReturnedWithItsStatus) {
  Vcpu& bsp = Create(0);
  fake_.FailNext("RootHvcall", 1, EINVAL, 0x0005);
  auto cpuid = bsp.cpuid()->GetCpuid();
  ASSERT_FALSE(cpuid.has_value());
  EXPECT_STREQ(cpuid.error().operation, "HVCALL_GET_VP_CPUID_VALUES");
  EXPECT_EQ(cpuid.error().domain, NativeDomain::kHvStatus);
  EXPECT_EQ(cpuid.error().native_code, 5);
}

TEST_F(MshvCpuidReadTest, ARepCallThatStopsShortIsAnError) {
  Vcpu& bsp = Create(0);
  EXPECT_CALL(*mock_, RootHvcall(_, _)).WillOnce([](int, mshv_root_hvcall* call) -> Status {
    call->reps = static_cast<uint16_t>(call->reps - 1);
    call->status = HV_STATUS_SUCCESS;
    return Ok();
  });
  auto cpuid = bsp.cpuid()->GetCpuid();
  ASSERT_FALSE(cpuid.has_value());
  EXPECT_THAT(cpuid.error().detail, HasSubstr("completed 2 of 3 reps"));
  Verified();
}

TEST_F(MshvCpuidReadTest, PartitionCpuidNeedsAVcpuFirst) {
  auto supported = partition_->cpuid()->SupportedCpuid();
  ASSERT_FALSE(supported.has_value());
  EXPECT_EQ(supported.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(supported.error().detail, HasSubstr("create a vCPU first"));
  EXPECT_TRUE(fake_.hvcalls().empty());
}

TEST_F(MshvCpuidReadTest, SupportedIsReadOnceThroughThePartitionFdFromTheFirstVcpu) {
  Create(1);  // the only VP so far
  fake_.hvcalls().clear();
  auto supported = partition_->cpuid()->SupportedCpuid();
  ASSERT_TRUE(supported.has_value()) << supported.error().Message();
  ASSERT_EQ(fake_.hvcalls().size(), 2u);
  EXPECT_EQ(fake_.hvcalls()[0].fd, partition_fd());
  Leaves(fake_.hvcalls()[0], 1);
  EXPECT_EQ(supported->ApicId(), 0u);  // APIC ID fields zeroed, as KVM reports them
  EXPECT_EQ(supported->Find(1)->ebx >> 24, 0u);
  EXPECT_EQ(supported->Find(0xB, 0)->edx, 0u);

  auto d0 = partition_->cpuid()->DefaultCpuid(0);
  auto d1 = partition_->cpuid()->DefaultCpuid(1);
  ASSERT_TRUE(d0.has_value());
  ASSERT_TRUE(d1.has_value());
  EXPECT_EQ(d0->ApicId(), 0u);
  EXPECT_EQ(d1->ApicId(), 1u);
  EXPECT_EQ(d1->Find(1)->ebx >> 24, 1u);
  EXPECT_EQ(d1->Find(0xB, 1)->edx, 1u);
  EXPECT_EQ(fake_.hvcalls().size(), 2u);  // cached
  auto bad = partition_->cpuid()->DefaultCpuid(2);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(MshvCpuidReadTest, AVmmHidesX2apicOnOneVcpu) {
  Vcpu& bsp = Create(0);
  auto table = partition_->cpuid()->DefaultCpuid(0);
  ASSERT_TRUE(table.has_value());
  ASSERT_TRUE(table->Has(cpuid_feature::kX2Apic));
  ASSERT_TRUE(table->SetFeature(cpuid_feature::kX2Apic, false));
  ASSERT_TRUE(table->SetFeature(cpuid_feature::kTscDeadline, true));
  ASSERT_TRUE(bsp.cpuid()->SetCpuid(*table));
  EXPECT_EQ(fake_.only_partition().cpuid_intercepts.size(), 29u);  // every leaf of the table
  const CpuidEntry leaf1 = *table->Find(1);
  InterceptHeader h;
  h.access_type = 2, h.instruction_length = 2, h.rip = 0x1000;
  const auto host = fake_.host_cpuid()[{1, 0}];
  fake_.vp(0).messages = {CpuidMessage(h, 1, 0, {host.eax, host.ebx, host.ecx, host.edx}),
                          PlainMessage(HVMSG_X64_HALT, 40)};
  fake_.hvcalls().clear();
  ASSERT_TRUE(bsp.Run().has_value());
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  EXPECT_EQ(leaf1.ecx & (1u << 21), 0u);
  EXPECT_EQ(fake_.hvcalls()[0].input,
            SetRegistersInput(0, {{HV_X64_REGISTER_RAX, leaf1.eax},
                                  {HV_X64_REGISTER_RBX, leaf1.ebx},
                                  {HV_X64_REGISTER_RCX, host.ecx & ~(1u << 21)},
                                  {HV_X64_REGISTER_RDX, leaf1.edx},
                                  {HV_X64_REGISTER_RIP, 0x1002}}));
}

}  // namespace
}  // namespace virt::mshv::test
