// MSHV CPUID: intercept installation, answers from the vCPU's table inside Run, reading a VP's
// CPUID with HVCALL_GET_VP_CPUID_VALUES, and the partition's supported/default tables.
#include <cstring>

#include "mshv_hvcall.h"
#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class MshvCpuidTest : public MshvTest {
 protected:
  void SetUp() override { SetUpVcpu(); }
  void TearDown() override {
    vcpu_.reset();
    ap_.reset();
    partition_.reset();
    MshvTest::TearDown();
  }
  int VpFd(uint32_t index) {
    for (auto& [fd, vp] : fake_.vps()) {
      if (vp.index == index) return fd;
    }
    return -1;
  }
  Vcpu& Ap() {
    if (!ap_) {
      auto v = partition_->CreateVcpu(1);
      EXPECT_TRUE(v.has_value());
      ap_ = std::move(*v);
    }
    return *ap_;
  }
  static InterceptHeader CpuidHeader(uint64_t rip) {
    InterceptHeader h;
    h.access_type = 2;  // execute
    h.instruction_length = 2;
    h.rip = rip;
    return h;
  }
  static CpuidEntry Entry(uint32_t function, uint32_t index, uint32_t flags, uint32_t eax,
                          uint32_t ebx, uint32_t ecx, uint32_t edx) {
    return CpuidEntry{function, index, flags, eax, ebx, ecx, edx};
  }

  std::unique_ptr<Vcpu> ap_;
};

constexpr uint32_t RAX = HV_X64_REGISTER_RAX, RBX = HV_X64_REGISTER_RBX, RCX = HV_X64_REGISTER_RCX,
                   RDX = HV_X64_REGISTER_RDX, RIP = HV_X64_REGISTER_RIP;

TEST_F(MshvCpuidTest, BothCapabilitiesAreThere) {
  EXPECT_NE(vcpu_->cpuid(), nullptr);
  EXPECT_NE(vcpu_->mp_state(), nullptr);
  EXPECT_NE(partition_->cpuid(), nullptr);
}

TEST_F(MshvCpuidTest, SetCpuidInstallsOneExecuteInterceptPerLeafWithTheExactInput) {
  const CpuidEntry entries[] = {Entry(1, 0, 0, 1, 2, 3, 4)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(entries)));
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& rec = fake_.hvcalls()[0];
  EXPECT_EQ(rec.fd, VpFd(0));  // partition-wide, issued on the vp fd (it never dangles)
  EXPECT_EQ(rec.call.code, 0x004d);
  EXPECT_EQ(rec.call.reps, 0);
  EXPECT_EQ(rec.call.in_sz, 24);
  EXPECT_EQ(rec.call.out_sz, 0);
  EXPECT_EQ(rec.call.out_ptr, 0u);
  std::vector<uint8_t> want(24, 0);
  PutLe(want.data(), 8, 0x04, 4);   // HV_INTERCEPT_ACCESS_MASK_EXECUTE
  PutLe(want.data(), 12, 0x02, 4);  // HV_INTERCEPT_TYPE_X64_CPUID
  PutLe(want.data(), 16, 1, 8);     // cpuid_index
  EXPECT_EQ(rec.input, want);
}

TEST_F(MshvCpuidTest, EachLeafIsInterceptedOncePerPartition) {
  const CpuidEntry bsp[] = {Entry(1, 0, 0, 1, 0, 0, 0), Entry(7, 0, 1, 0, 0, 0, 0),
                            Entry(7, 1, 1, 0, 0, 0, 0), Entry(0x80000001, 0, 0, 0, 0, 0, 0)};
  const CpuidEntry ap[] = {Entry(0xB, 0, 1, 0, 0, 0, 1), Entry(1, 0, 0, 2, 0, 0, 0)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(bsp)));
  ASSERT_TRUE(Ap().cpuid()->SetCpuid(Cpuid(ap)));
  EXPECT_THAT(fake_.only_partition().intercept_log, ElementsAre(1u, 7u, 0x80000001u, 0xBu));
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(bsp)));  // again: nothing new to install
  EXPECT_EQ(fake_.only_partition().intercept_log.size(), 4u);
}

TEST_F(MshvCpuidTest, InterceptIsAnsweredFromTheTableInsideRun) {
  const CpuidEntry entries[] = {Entry(1, 0, 0, 0x806F8, 0x00020800, 0x80200209, 0x1F8BFBFF)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(entries)));
  fake_.hvcalls().clear();
  fake_.vp(0).messages = {CpuidMessage(CpuidHeader(0x7000), 1, 0, {0x11, 0x22, 0x33, 0x44}),
                          PlainMessage(HVMSG_X64_HALT, 40)};
  auto exit = vcpu_->Run();
  ASSERT_TRUE(exit.has_value()) << exit.error().Message();
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*exit));  // the CPUID never reached the VMM
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& rec = fake_.hvcalls()[0];
  EXPECT_EQ(rec.call.code, 0x0051);
  EXPECT_EQ(rec.call.reps, 5);
  EXPECT_EQ(rec.input, SetRegistersInput(0, {{RAX, 0x806F8},
                                             {RBX, 0x00020800},
                                             {RCX, 0x80200209},
                                             {RDX, 0x1F8BFBFF},
                                             {RIP, 0x7002}}));
}

TEST_F(MshvCpuidTest, LeavesTheTableLacksGetTheHypervisorsDefault) {
  // vCPU 1 intercepts leaves 7 and 0xD; vCPU 0 has only a sub-leaf-specific 7.0 entry.
  const CpuidEntry bsp[] = {Entry(7, 0, kCpuidIndexSignificant, 1, 0xAB, 0, 0)};
  const CpuidEntry ap[] = {Entry(0xD, 0, 0, 7, 0, 0, 0), Entry(7, 0, 0, 0, 0, 0, 0)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(bsp)));
  ASSERT_TRUE(Ap().cpuid()->SetCpuid(Cpuid(ap)));
  fake_.hvcalls().clear();
  fake_.vp(0).messages = {
      CpuidMessage(CpuidHeader(0x100), 0xD, 1, {0xFFFFFFFF0000000Full, 0x240, 0x3, 0x0}),
      CpuidMessage(CpuidHeader(0x102), 7, 1, {0x10, 0, 0, 0}),
      CpuidMessage(CpuidHeader(0x104), 7, 0, {0xFF, 0xFF, 0xFF, 0xFF}),
      PlainMessage(HVMSG_X64_HALT, 40)};
  auto exit = vcpu_->Run();
  ASSERT_TRUE(exit.has_value()) << exit.error().Message();
  ASSERT_EQ(fake_.hvcalls().size(), 3u);
  EXPECT_EQ(fake_.hvcalls()[0].input,  // leaf 0xD: not in vCPU 0's table; upper half cleared
            SetRegistersInput(0, {{RAX, 0xF}, {RBX, 0x240}, {RCX, 0x3}, {RDX, 0}, {RIP, 0x102}}));
  EXPECT_EQ(fake_.hvcalls()[1].input,  // 7.1: the table's 7.0 is sub-leaf specific
            SetRegistersInput(0, {{RAX, 0x10}, {RBX, 0}, {RCX, 0}, {RDX, 0}, {RIP, 0x104}}));
  EXPECT_EQ(fake_.hvcalls()[2].input,  // 7.0: from the table
            SetRegistersInput(0, {{RAX, 1}, {RBX, 0xAB}, {RCX, 0}, {RDX, 0}, {RIP, 0x106}}));
}

TEST_F(MshvCpuidTest, AnEntryWithoutIndexSignificanceAnswersEverySubleaf) {
  const CpuidEntry entries[] = {Entry(0x80000001, 0, 0, 0, 0, 0x121, 0x2C100800)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(entries)));
  fake_.hvcalls().clear();
  fake_.vp(0).messages = {CpuidMessage(CpuidHeader(0x10), 0x80000001, 5, {1, 1, 1, 1}),
                          PlainMessage(HVMSG_X64_HALT, 40)};
  ASSERT_TRUE(vcpu_->Run().has_value());
  EXPECT_EQ(fake_.hvcalls()[0].input,
            SetRegistersInput(0, {{RAX, 0}, {RBX, 0}, {RCX, 0x121}, {RDX, 0x2C100800}, {RIP, 0x12}}));
}

TEST_F(MshvCpuidTest, WithoutATableEveryInterceptGetsTheDefault) {
  const CpuidEntry entries[] = {Entry(6, 0, 0, 9, 9, 9, 9)};
  ASSERT_TRUE(Ap().cpuid()->SetCpuid(Cpuid(entries)));  // intercepts leaf 6 for vCPU 0 too
  fake_.hvcalls().clear();
  fake_.vp(0).messages = {CpuidMessage(CpuidHeader(0x20), 6, 0, {4, 0, 1, 0}),
                          PlainMessage(HVMSG_X64_HALT, 40)};
  ASSERT_TRUE(vcpu_->Run().has_value());
  EXPECT_EQ(fake_.hvcalls()[0].input,
            SetRegistersInput(0, {{RAX, 4}, {RBX, 0}, {RCX, 1}, {RDX, 0}, {RIP, 0x22}}));
}

TEST_F(MshvCpuidTest, AFailedAnswerIsReturnedAndTheNextRunGoesOn) {
  fake_.vp(0).messages = {CpuidMessage(CpuidHeader(0x20), 6, 0, {4, 0, 1, 0}),
                          PlainMessage(HVMSG_X64_HALT, 40)};
  fake_.FailNext("RootHvcall", 0, EIO, 0x0005);
  auto failed = vcpu_->Run();
  ASSERT_FALSE(failed.has_value());
  EXPECT_STREQ(failed.error().operation, "HVCALL_SET_VP_REGISTERS");
  EXPECT_EQ(fake_.vp(0).registers[RIP].low, 0u);  // RIP not advanced: CPUID runs again
  auto exit = vcpu_->Run();
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*exit));
}

TEST_F(MshvCpuidTest, SetCpuidAfterTheFirstRunIsRefused) {
  fake_.vp(0).messages = {PlainMessage(HVMSG_X64_HALT, 40)};
  ASSERT_TRUE(vcpu_->Run().has_value());
  fake_.hvcalls().clear();
  const CpuidEntry entries[] = {Entry(1, 0, 0, 1, 0, 0, 0)};
  auto s = vcpu_->cpuid()->SetCpuid(Cpuid(entries));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(fake_.hvcalls().empty());
  EXPECT_THAT(fake_.only_partition().cpuid_intercepts, IsEmpty());
}

TEST_F(MshvCpuidTest, CancelBeforeTheFirstRunStillAllowsSetCpuid) {
  vcpu_->Cancel();
  auto exit = vcpu_->Run();
  ASSERT_TRUE(exit.has_value());
  ASSERT_TRUE(std::holds_alternative<CancelledExit>(*exit));  // never entered the guest
  const CpuidEntry entries[] = {Entry(1, 0, 0, 1, 0, 0, 0)};
  EXPECT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(entries)));
}

TEST_F(MshvCpuidTest, UnknownEntryFlagsAreRefusedBeforeAnyHypercall) {
  const CpuidEntry entries[] = {Entry(1, 0, 0x4, 1, 0, 0, 0)};
  auto s = vcpu_->cpuid()->SetCpuid(Cpuid(entries));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().detail, HasSubstr("flags"));
  EXPECT_TRUE(fake_.hvcalls().empty());
}

TEST_F(MshvCpuidTest, AFailedInstallKeepsTheOldTableAndARetryInstallsOnlyWhatIsMissing) {
  const CpuidEntry old_entries[] = {Entry(1, 0, 0, 0x11, 0, 0, 0)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(old_entries)));
  const CpuidEntry new_entries[] = {Entry(1, 0, 0, 0x22, 0, 0, 0), Entry(6, 0, 0, 6, 0, 0, 0),
                                    Entry(0xA, 0, 0, 0xA, 0, 0, 0)};
  fake_.FailNext("RootHvcall", 1, EIO, 0x000B);  // the install of leaf 0xA
  auto s = vcpu_->cpuid()->SetCpuid(Cpuid(new_entries));
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "HVCALL_INSTALL_INTERCEPT");
  EXPECT_THAT(s.error().detail, HasSubstr("0xa"));
  EXPECT_EQ(s.error().domain, NativeDomain::kHvStatus);
  auto table = vcpu_->cpuid()->GetCpuid();
  ASSERT_TRUE(table.has_value());
  EXPECT_EQ(*table, Cpuid(old_entries));
  // Leaf 6 stays intercepted: harmless, a vCPU whose table lacks it answers the default.
  EXPECT_THAT(fake_.only_partition().cpuid_intercepts, ElementsAre(1u, 6u));
  // Retrying before the first Run installs leaf 0xA only.
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(new_entries)));
  EXPECT_THAT(fake_.only_partition().intercept_log, ElementsAre(1u, 6u, 0xAu));
  fake_.hvcalls().clear();
  fake_.vp(0).messages = {CpuidMessage(CpuidHeader(0x30), 1, 0, {0, 0, 0, 0}),
                          CpuidMessage(CpuidHeader(0x32), 6, 0, {0x66, 0, 0, 0}),
                          PlainMessage(HVMSG_X64_HALT, 40)};
  ASSERT_TRUE(vcpu_->Run().has_value());
  ASSERT_EQ(fake_.hvcalls().size(), 2u);
  EXPECT_EQ(fake_.hvcalls()[0].input,
            SetRegistersInput(0, {{RAX, 0x22}, {RBX, 0}, {RCX, 0}, {RDX, 0}, {RIP, 0x32}}));
  EXPECT_EQ(fake_.hvcalls()[1].input,
            SetRegistersInput(0, {{RAX, 6}, {RBX, 0}, {RCX, 0}, {RDX, 0}, {RIP, 0x34}}));
}

TEST_F(MshvCpuidTest, InterceptInstallIsRetriedAfterTheKernelDepositedMemory) {
  fake_.FailNext("RootHvcall", 0, EAGAIN, HV_STATUS_INSUFFICIENT_MEMORY);
  const CpuidEntry entries[] = {Entry(1, 0, 0, 1, 0, 0, 0)};
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(Cpuid(entries)));
  ASSERT_EQ(fake_.hvcalls().size(), 2u);
  EXPECT_EQ(fake_.hvcalls()[0].input, fake_.hvcalls()[1].input);
  EXPECT_EQ(fake_.hvcalls()[1].call.status, 0);  // status cleared going in again
  EXPECT_THAT(fake_.only_partition().intercept_log, ElementsAre(1u));
}

TEST_F(MshvCpuidTest, EndlessDepositsGiveUpWithTheStatus) {
  EXPECT_CALL(*mock_, RootHvcall(_, _))
      .Times(kMaxMemoryDeposits + 1)
      .WillRepeatedly([](int, mshv_root_hvcall* call) -> Status {
        call->status = HV_STATUS_INSUFFICIENT_MEMORY;
        return Error::Errno("MSHV_ROOT_HVCALL", EAGAIN);
      });
  const CpuidEntry entries[] = {Entry(1, 0, 0, 1, 0, 0, 0)};
  auto s = vcpu_->cpuid()->SetCpuid(Cpuid(entries));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().native_code, HV_STATUS_INSUFFICIENT_MEMORY);
  Verified();
}

}  // namespace
}  // namespace virt::mshv::test
