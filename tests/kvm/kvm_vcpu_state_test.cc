// KvmVcpu's CPUID and MP state against a mocked KvmIoctl: exact kvm_cpuid2 / kvm_mp_state
// payloads, the freeze at the first KVM_RUN, and errors that change nothing.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::HasSubstr;

class KvmVcpuStateTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 4, .irqchip = true});
    ASSERT_NE(part_, nullptr);
  }
  void TearDown() override {
    vcpus_.clear();
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }
  Vcpu& NewVcpu(uint32_t index) {
    auto v = part_->CreateVcpu(index);
    EXPECT_TRUE(v.has_value()) << v.error().Message();
    vcpus_.push_back(std::move(*v));
    return *vcpus_.back();
  }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
};

TEST_F(KvmVcpuStateTest, ThePartitionReportsTheSupportedSetAndEachVcpusDefault) {
  PartitionCpuid* cpuid = part_->cpuid();
  ASSERT_NE(cpuid, nullptr);
  auto supported = cpuid->SupportedCpuid();
  ASSERT_TRUE(supported.has_value());
  const auto host = FakeKvmState::DefaultCpuid();
  ASSERT_EQ(supported->size(), host.size());
  for (size_t i = 0; i < host.size(); ++i) {
    const CpuidEntry& e = supported->entries()[i];
    EXPECT_EQ(e.function, host[i].function);
    EXPECT_EQ(e.index, host[i].index);
    EXPECT_EQ(e.flags != 0, host[i].flags == KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
    EXPECT_EQ(e.ebx, host[i].ebx);
    EXPECT_EQ(e.edx, host[i].edx);
  }
  // The host's own APIC IDs (0xAB, 0xCD) stay in the supported set; the default has index 3.
  EXPECT_EQ(supported->Find(1)->ebx >> 24, 0xABu);
  auto def = cpuid->DefaultCpuid(3);
  ASSERT_TRUE(def.has_value());
  EXPECT_EQ(def->ApicId(), 3u);
  EXPECT_EQ(def->Find(1)->ebx, 0x03010800u);
  EXPECT_THAT(cpuid->DefaultCpuid(4), IsErrorCode(ErrorCode::kInvalidArgument));
  // CreateVcpu hands exactly that default to KVM_SET_CPUID2.
  Vcpu& v3 = NewVcpu(3);
  auto got = v3.cpuid()->GetCpuid();
  ASSERT_TRUE(got.has_value()) << got.error().Message();
  EXPECT_EQ(*got, *def);
}

TEST_F(KvmVcpuStateTest, SetCpuidSendsTheExactTableAndGetCpuidReadsItBack) {
  Vcpu& v = NewVcpu(1);
  Cpuid c = *part_->cpuid()->DefaultCpuid(1);
  ASSERT_TRUE(c.SetFeature(cpuid_feature::kX2Apic, false));
  c.Set({0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d});
  EXPECT_CALL(mock(), SetCpuid2(kVcpuFdBase + 1, _)).WillOnce([this](int fd, const kvm_cpuid2& k) {
    EXPECT_EQ(k.nent, 6u);
    EXPECT_EQ(k.padding, 0u);
    const kvm_cpuid_entry2& leaf1 = k.entries[1];
    EXPECT_EQ(leaf1.function, 1u);
    EXPECT_EQ(leaf1.ecx, 0x7ffafbffu & ~(1u << 21));
    EXPECT_EQ(leaf1.ebx, 0x01010800u);
    const kvm_cpuid_entry2& leafb = k.entries[2];
    EXPECT_EQ(leafb.flags, static_cast<uint32_t>(KVM_CPUID_FLAG_SIGNIFCANT_INDEX));
    EXPECT_EQ(leafb.edx, 1u);
    const kvm_cpuid_entry2& kvm = k.entries[5];
    EXPECT_EQ(kvm.function, 0x40000000u);
    EXPECT_EQ(kvm.flags, 0u);
    EXPECT_EQ(kvm.ebx, 0x4b4d564bu);
    for (uint32_t i = 0; i < k.nent; ++i) {
      EXPECT_EQ(k.entries[i].padding[0] | k.entries[i].padding[1] | k.entries[i].padding[2], 0u);
    }
    return fake().SetCpuid2(fd, k);
  });
  ASSERT_TRUE(v.cpuid()->SetCpuid(c));
  EXPECT_CALL(mock(), GetCpuid2(kVcpuFdBase + 1, ::testing::Pointee(::testing::Field(
                                                     &kvm_cpuid2::nent, 256u))));
  auto back = v.cpuid()->GetCpuid();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, c);
  EXPECT_FALSE(back->Has(cpuid_feature::kX2Apic));
}

TEST_F(KvmVcpuStateTest, CpuidIsFrozenOnceTheVcpuHasRun) {
  Vcpu& v = NewVcpu(0);
  const Cpuid before = *v.cpuid()->GetCpuid();
  ASSERT_TRUE(v.Run());  // the fake's KVM_RUN halts
  Cpuid c = before;
  ASSERT_TRUE(c.SetFeature(cpuid_feature::kTscDeadline, true));
  EXPECT_CALL(mock(), SetCpuid2(_, _)).Times(0);
  auto s = v.cpuid()->SetCpuid(c);
  EXPECT_THAT(s, IsErrorCode(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(s.error().Message(), HasSubstr("first KVM_RUN"));
  EXPECT_EQ(*v.cpuid()->GetCpuid(), before);
}

TEST_F(KvmVcpuStateTest, EmptyAndOversizedTablesAreRefusedWithoutAnIoctl) {
  Vcpu& v = NewVcpu(0);
  const Cpuid before = *v.cpuid()->GetCpuid();
  EXPECT_CALL(mock(), SetCpuid2(_, _)).Times(0);
  EXPECT_THAT(v.cpuid()->SetCpuid(Cpuid()), IsErrorCode(ErrorCode::kInvalidArgument));
  std::vector<CpuidEntry> many;
  for (uint32_t i = 0; i < 257; ++i) many.push_back({0x80000000u + i, 0, 0, 1, 2, 3, 4});
  EXPECT_THAT(v.cpuid()->SetCpuid(Cpuid(many)), IsErrorCode(ErrorCode::kInvalidArgument));
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_EQ(*v.cpuid()->GetCpuid(), before);
  many.pop_back();
  ASSERT_TRUE(v.cpuid()->SetCpuid(Cpuid(many)));  // 256 is KVM's maximum, still accepted
  EXPECT_EQ(fake().CpuidEntriesSet(kVcpuFdBase).size(), 256u);
}

TEST_F(KvmVcpuStateTest, ARefusedTableKeepsTheOldOne) {
  Vcpu& v = NewVcpu(2);
  const auto before = fake().cpuid_set(kVcpuFdBase + 2);
  fake().FailCall("KVM_SET_CPUID2", 0, EINVAL);
  Cpuid c = *v.cpuid()->GetCpuid();
  ASSERT_TRUE(c.SetFeature(cpuid_feature::kX2Apic, false));
  auto s = v.cpuid()->SetCpuid(c);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().native_code, EINVAL);
  EXPECT_STREQ(s.error().operation, "KVM_SET_CPUID2");
  EXPECT_EQ(fake().cpuid_set(kVcpuFdBase + 2), before);
  EXPECT_TRUE(v.cpuid()->GetCpuid()->Has(cpuid_feature::kX2Apic));
}

TEST_F(KvmVcpuStateTest, ApsWaitForSipiAndTheMpStateRoundTrips) {
  Vcpu& bsp = NewVcpu(0);
  Vcpu& ap = NewVcpu(1);
  ASSERT_NE(ap.mp_state(), nullptr);
  EXPECT_EQ(*bsp.mp_state()->GetMpState(), MpState::kRunnable);
  EXPECT_EQ(*ap.mp_state()->GetMpState(), MpState::kUninitialized);
  const std::pair<MpState, uint32_t> cases[] = {
      {MpState::kRunnable, KVM_MP_STATE_RUNNABLE},
      {MpState::kUninitialized, KVM_MP_STATE_UNINITIALIZED},
      {MpState::kInitReceived, KVM_MP_STATE_INIT_RECEIVED},
      {MpState::kHalted, KVM_MP_STATE_HALTED},
      {MpState::kSipiReceived, KVM_MP_STATE_SIPI_RECEIVED},
  };
  for (auto [state, raw] : cases) {
    SCOPED_TRACE(ToString(state));
    EXPECT_CALL(mock(), SetMpState(kVcpuFdBase + 1, ::testing::Field(&kvm_mp_state::mp_state, raw)));
    ASSERT_TRUE(ap.mp_state()->SetMpState(state));
    EXPECT_EQ(fake().mp_state(kVcpuFdBase + 1), raw);
    EXPECT_EQ(*ap.mp_state()->GetMpState(), state);
  }
}

TEST_F(KvmVcpuStateTest, AnMpStateOutsideTheX86SetIsUnavailableByNumber) {
  Vcpu& v = NewVcpu(0);
  fake().set_mp_state(kVcpuFdBase, KVM_MP_STATE_AP_RESET_HOLD);
  auto got = v.mp_state()->GetMpState();
  EXPECT_THAT(got, IsErrorCode(ErrorCode::kUnavailable));
  EXPECT_THAT(got.error().Message(), HasSubstr("state 9"));
  fake().FailCall("KVM_SET_MP_STATE", 0, EBUSY);
  auto s = v.mp_state()->SetMpState(MpState::kRunnable);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().native_code, EBUSY);
  EXPECT_EQ(fake().mp_state(kVcpuFdBase), static_cast<uint32_t>(KVM_MP_STATE_AP_RESET_HOLD));
}

TEST_F(KvmVcpuStateTest, NoMpStateCapabilityNoMpStateInterface) {
  vcpus_.clear();
  part_.reset();
  hv_.reset();
  fake().SetCapability(KVM_CAP_MP_STATE, 0);
  hv_ = NewHypervisor();
  part_ = NewPartition(*hv_, {.vcpu_count = 2, .irqchip = true});
  Vcpu& v = NewVcpu(0);
  EXPECT_EQ(v.mp_state(), nullptr);
  EXPECT_NE(v.cpuid(), nullptr);
}

}  // namespace
}  // namespace virt::kvm::test
