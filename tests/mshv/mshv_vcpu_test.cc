// MshvVcpu: intercepts -> VcpuExit, completions through HVCALL_SET_VP_REGISTERS, cancel.
#include <unistd.h>

#include <cstring>
#include <future>
#include <thread>

#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class MshvVcpuTest : public MshvTest {
 protected:
  void SetUp() override { SetUpVcpu(); }
  void TearDown() override {
    vcpu_.reset();
    MshvTest::TearDown();
  }
  void Queue(const mshv_run_vp& m) { fake_.vp(0).messages.push_back(m); }
  uint64_t Reg(uint32_t name) { return fake_.vp(0).registers[name].low; }
  void SetReg(uint32_t name, uint64_t v) { fake_.vp(0).registers[name] = {v, 0}; }
  VcpuExit RunOk() {
    auto exit = vcpu_->Run();
    EXPECT_TRUE(exit.has_value()) << exit.error().Message();
    return exit ? *exit : VcpuExit{UnknownExit{~0u}};
  }
  static InterceptHeader Header(uint8_t access, uint8_t length, uint64_t rip = 0x1000) {
    InterceptHeader h;
    h.access_type = access;
    h.instruction_length = length;
    h.rip = rip;
    return h;
  }
};

// The input of a one-register HVCALL_SET_VP_REGISTERS, byte by byte.
std::vector<uint8_t> SetInput(std::initializer_list<std::pair<uint32_t, uint64_t>> regs) {
  std::vector<uint8_t> in(16 + 32 * regs.size(), 0);
  size_t i = 0;
  for (auto [name, value] : regs) {
    PutLe(in.data(), 16 + 32 * i, name, 4);
    PutLe(in.data(), 16 + 32 * i + 16, value, 8);
    ++i;
  }
  return in;
}

TEST_F(MshvVcpuTest, PortOutCarriesRaxBytesAndAdvancesRipAtOnce) {
  Queue(IoPortMessage(Header(1, 2), 0x3F8, 2, 0x112233445566BEEF));
  VcpuExit exit = RunOk();
  const auto& io = std::get<IoExit>(exit);
  EXPECT_EQ(io.port, 0x3F8);
  EXPECT_EQ(io.size, 2);
  EXPECT_TRUE(io.is_write);
  EXPECT_EQ(io.count, 1u);
  EXPECT_THAT(std::vector<uint8_t>(io.data.begin(), io.data.end()), ElementsAre(0xEF, 0xBE));
  EXPECT_EQ(io.value(), 0xBEEFu);
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& rec = fake_.hvcalls()[0];
  EXPECT_EQ(rec.call.code, 0x0051);
  EXPECT_EQ(rec.call.reps, 1);
  EXPECT_EQ(rec.call.in_sz, 48);
  EXPECT_EQ(rec.call.out_sz, 0);
  EXPECT_EQ(rec.input, SetInput({{0x00020010, 0x1002}}));
  EXPECT_EQ(rec.fd, fake_.vps().begin()->first);
}

TEST_F(MshvVcpuTest, PortInCompletionMergesRaxAndAdvancesRipInOneCall) {
  Queue(IoPortMessage(Header(0, 1), 0x60, 1, 0x1122334455667788));
  const VcpuExit io_exit = RunOk();
  const auto& io = std::get<IoExit>(io_exit);
  EXPECT_FALSE(io.is_write);
  EXPECT_TRUE(fake_.hvcalls().empty());  // nothing until the VMM answers
  const uint8_t answer[] = {0x5A};
  ASSERT_TRUE(vcpu_->CompleteIoIn(answer));
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  EXPECT_EQ(fake_.hvcalls()[0].call.reps, 2);
  EXPECT_EQ(fake_.hvcalls()[0].input,
            SetInput({{0x00020000, 0x112233445566775A}, {0x00020010, 0x1001}}));
  EXPECT_EQ(vcpu_->CompleteIoIn(answer).error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(MshvVcpuTest, PortInOf32BitsZeroExtendsRax) {
  Queue(IoPortMessage(Header(0, 2), 0xCFC, 4, 0xFFFFFFFFFFFFFFFF));
  RunOk();
  const uint8_t answer[] = {1, 2, 3, 4};
  ASSERT_TRUE(vcpu_->CompleteIoIn(answer));
  EXPECT_EQ(Reg(HV_X64_REGISTER_RAX), 0x04030201u);
  EXPECT_EQ(Reg(HV_X64_REGISTER_RIP), 0x1002u);
}

TEST_F(MshvVcpuTest, PortInRejectsTheWrongLength) {
  Queue(IoPortMessage(Header(0, 1), 0x60, 2, 0));
  RunOk();
  const uint8_t three[] = {1, 2, 3};
  EXPECT_EQ(vcpu_->CompleteIoIn(three).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake_.hvcalls().empty());
}

TEST_F(MshvVcpuTest, UnansweredInCompletesWithAllOnesBeforeTheNextRun) {
  Queue(IoPortMessage(Header(0, 1), 0x60, 1, 0x1100));
  Queue(PlainMessage(HVMSG_X64_HALT, 40));
  RunOk();
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
  EXPECT_EQ(Reg(HV_X64_REGISTER_RAX), 0x11FFu);
  EXPECT_EQ(Reg(HV_X64_REGISTER_RIP), 0x1001u);
}

TEST_F(MshvVcpuTest, FailedCompletionStaysPendingAndCanBeRetried) {
  Queue(IoPortMessage(Header(0, 1), 0x60, 1, 0));
  RunOk();
  fake_.FailNext("RootHvcall", 0, EIO);
  const uint8_t answer[] = {0x42};
  auto failed = vcpu_->CompleteIoIn(answer);
  ASSERT_FALSE(failed.has_value());
  EXPECT_STREQ(failed.error().operation, "HVCALL_SET_VP_REGISTERS");
  EXPECT_TRUE(vcpu_->CompleteIoIn(answer));
  EXPECT_EQ(Reg(HV_X64_REGISTER_RAX), 0x42u);
}

TEST_F(MshvVcpuTest, StringPortIoIsUnsupported) {
  mshv_run_vp m = IoPortMessage(Header(1, 2), 0x3F8, 1 | 0x8 | 0x10, 0);
  m.msg_buf[16 + 43] = 2;  // instruction_byte_count
  m.msg_buf[16 + 56] = 0xF3;
  m.msg_buf[16 + 57] = 0x6E;  // rep outsb
  Queue(m);
  const VcpuExit u_exit = RunOk();
  const auto& u = std::get<UnsupportedInstructionExit>(u_exit);
  EXPECT_EQ(u.address, 0x3F8u);
  EXPECT_EQ(u.length, 2);
  EXPECT_EQ(u.bytes[0], 0xF3);
  EXPECT_EQ(u.bytes[1], 0x6E);
  EXPECT_THAT(u.reason, HasSubstr("string"));
  EXPECT_TRUE(fake_.hvcalls().empty());  // RIP untouched
}

TEST_F(MshvVcpuTest, MmioWriteFromARegisterReadsItAndAdvancesRip) {
  SetReg(HV_X64_REGISTER_RCX, 0xAABBCCDD11223344);
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(1, 0, 0x2000), 0xFEB00010, {0x89, 0x08}));
  const VcpuExit mmio_exit = RunOk();
  const auto& mmio = std::get<MmioExit>(mmio_exit);
  EXPECT_EQ(mmio.address, 0xFEB00010u);
  EXPECT_EQ(mmio.size, 4);
  EXPECT_TRUE(mmio.is_write);
  EXPECT_EQ(mmio.value, 0x11223344u);
  ASSERT_EQ(fake_.hvcalls().size(), 2u);
  const HvcallRecord& get = fake_.hvcalls()[0];
  EXPECT_EQ(get.call.code, 0x0050);
  EXPECT_EQ(get.call.reps, 1);
  EXPECT_EQ(get.call.in_sz, 20);
  EXPECT_EQ(get.call.out_sz, 16);
  std::vector<uint8_t> want(20, 0);
  PutLe(want.data(), 16, 0x00020001, 4);  // RCX
  EXPECT_EQ(get.input, want);
  EXPECT_EQ(fake_.hvcalls()[1].input, SetInput({{0x00020010, 0x2002}}));
}

TEST_F(MshvVcpuTest, MmioWriteOfAnImmediateNeedsNoRegisterRead) {
  Queue(MemoryMessage(HVMSG_GPA_INTERCEPT, Header(1, 0), 0xFEB00000, {0xC6, 0x00, 0xAB}));
  const VcpuExit mmio_exit = RunOk();
  const auto& mmio = std::get<MmioExit>(mmio_exit);
  EXPECT_EQ(mmio.size, 1);
  EXPECT_EQ(mmio.value, 0xABu);
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  EXPECT_EQ(fake_.hvcalls()[0].input, SetInput({{0x00020010, 0x1003}}));
}

TEST_F(MshvVcpuTest, MmioWriteFromAhUsesBits15To8) {
  SetReg(HV_X64_REGISTER_RAX, 0x1234);
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(1, 0), 0xFEB00000, {0x88, 0x20}));
  EXPECT_EQ(std::get<MmioExit>(RunOk()).value, 0x12u);
}

TEST_F(MshvVcpuTest, MmioReadOfAByteKeepsTheRestOfTheRegister) {
  SetReg(HV_X64_REGISTER_RDX, 0x1122334455667788);
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0, 0), 0xFEB00004, {0x8A, 0x10}));
  const VcpuExit mmio_exit = RunOk();
  const auto& mmio = std::get<MmioExit>(mmio_exit);
  EXPECT_FALSE(mmio.is_write);
  EXPECT_EQ(mmio.size, 1);
  EXPECT_TRUE(fake_.hvcalls().empty());
  ASSERT_TRUE(vcpu_->CompleteMmioRead(0xFFAB));
  ASSERT_EQ(fake_.hvcalls().size(), 2u);  // GET RDX, SET {RDX, RIP}
  EXPECT_EQ(fake_.hvcalls()[0].call.code, 0x0050);
  EXPECT_EQ(fake_.hvcalls()[1].input,
            SetInput({{0x00020002, 0x11223344556677AB}, {0x00020010, 0x1002}}));
}

TEST_F(MshvVcpuTest, MmioRead32ZeroExtendsWithoutReadingTheRegister) {
  SetReg(HV_X64_REGISTER_R10, ~uint64_t{0});
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0, 0), 0xFEB00000, {0x44, 0x8B, 0x10}));
  EXPECT_EQ(std::get<MmioExit>(RunOk()).size, 4);
  ASSERT_TRUE(vcpu_->CompleteMmioRead(0xDEADBEEF));
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  EXPECT_EQ(Reg(HV_X64_REGISTER_R10), 0xDEADBEEFu);
  EXPECT_EQ(Reg(HV_X64_REGISTER_RIP), 0x1003u);
}

TEST_F(MshvVcpuTest, MovzxAndMovsxExtendTheReadValue) {
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0, 0), 0xFEB00000, {0x0F, 0xB7, 0x00}));
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0, 0, 0x1003), 0xFEB00000,
                      {0x48, 0x0F, 0xBE, 0x18}));
  EXPECT_EQ(std::get<MmioExit>(RunOk()).size, 2);
  ASSERT_TRUE(vcpu_->CompleteMmioRead(0x12348765));
  EXPECT_EQ(Reg(HV_X64_REGISTER_RAX), 0x8765u);
  EXPECT_EQ(std::get<MmioExit>(RunOk()).size, 1);
  ASSERT_TRUE(vcpu_->CompleteMmioRead(0x80));
  EXPECT_EQ(Reg(HV_X64_REGISTER_RBX), 0xFFFFFFFFFFFFFF80u);
  EXPECT_EQ(Reg(HV_X64_REGISTER_RIP), 0x1007u);
}

TEST_F(MshvVcpuTest, UnsupportedMmioInstructionCarriesTheBytes) {
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(1, 0), 0xFEB00000, {0x01, 0x08, 0x90}));
  const VcpuExit u_exit = RunOk();
  const auto& u = std::get<UnsupportedInstructionExit>(u_exit);
  EXPECT_EQ(u.address, 0xFEB00000u);
  EXPECT_EQ(u.length, 3);
  EXPECT_EQ(u.bytes[0], 0x01);
  EXPECT_EQ(u.bytes[1], 0x08);
  EXPECT_THAT(u.reason, HasSubstr("MOV"));
  EXPECT_TRUE(fake_.hvcalls().empty());
  EXPECT_STREQ(ExitName(VcpuExit{u}), "unsupported_instruction");
}

TEST_F(MshvVcpuTest, TruncatedMmioInstructionBytesAreUnsupported) {
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(1, 0), 0xFEB00000, {0x89}));
  const VcpuExit u_exit = RunOk();
  const auto& u = std::get<UnsupportedInstructionExit>(u_exit);
  EXPECT_THAT(u.reason, HasSubstr("truncated"));
}

TEST_F(MshvVcpuTest, DirectionMismatchIsUnsupported) {
  Queue(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0, 0), 0xFEB00000, {0x89, 0x08}));
  EXPECT_TRUE(std::holds_alternative<UnsupportedInstructionExit>(RunOk()));
}

TEST_F(MshvVcpuTest, HaltShutdownAndRunAgain) {
  Queue(PlainMessage(HVMSG_NONE, 0));
  Queue(PlainMessage(HVMSG_TIMER_EXPIRED, 0));
  Queue(PlainMessage(HVMSG_X64_HALT, 40));
  Queue(PlainMessage(HVMSG_UNRECOVERABLE_EXCEPTION, 40));
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
  EXPECT_EQ(fake_.calls("RunVp"), 3);
  EXPECT_TRUE(std::holds_alternative<ShutdownExit>(RunOk()));
}

TEST_F(MshvVcpuTest, GarbageMessageIsAnErrorNotACrash) {
  Queue(IoPortMessage(Header(1, 1), 0x80, 3, 0));
  auto exit = vcpu_->Run();
  ASSERT_FALSE(exit.has_value());
  EXPECT_THAT(exit.error().detail, HasSubstr("access size 3"));
}

TEST_F(MshvVcpuTest, ForeignSignalEintrRunsAgain) {
  fake_.FailNext("RunVp", 0, EINTR);
  Queue(PlainMessage(HVMSG_X64_HALT, 40));
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
  EXPECT_EQ(fake_.calls("RunVp"), 2);
}

TEST_F(MshvVcpuTest, RunVpErrorIsReturned) {
  fake_.FailNext("RunVp", 0, EFAULT);
  auto exit = vcpu_->Run();
  ASSERT_FALSE(exit.has_value());
  EXPECT_STREQ(exit.error().operation, "MSHV_RUN_VP");
  EXPECT_EQ(exit.error().native_code, EFAULT);
}

TEST_F(MshvVcpuTest, CancelBeforeRunReturnsCancelledOnceWithoutEnteringTheGuest) {
  vcpu_->Cancel();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(RunOk()));
  EXPECT_EQ(fake_.calls("RunVp"), 0);
  Queue(PlainMessage(HVMSG_X64_HALT, 40));
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
}

TEST_F(MshvVcpuTest, CancelFromAnotherThreadKicksARunningVp) {
  std::promise<void> entered;
  std::atomic<bool> first{true};
  ON_CALL(*mock_, RunVp(_, _)).WillByDefault([&](int, mshv_run_vp*) -> Status {
    if (first.exchange(false)) entered.set_value();
    ::pause();  // like the kernel: sleeps until a signal is pending, then EINTR
    return Error::Errno("MSHV_RUN_VP", EINTR);
  });
  auto run = std::async(std::launch::async, [&] { return vcpu_->Run(); });
  entered.get_future().wait();
  vcpu_->Cancel();  // returns once the runner has left MSHV_RUN_VP
  auto exit = run.get();
  ASSERT_TRUE(exit.has_value()) << exit.error().Message();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(*exit));
}

TEST_F(MshvVcpuTest, RegistersRoundTripInOneCallEach) {
  Registers r;
  r.rax = 1, r.rbx = 2, r.rcx = 3, r.rdx = 4, r.rsi = 5, r.rdi = 6, r.rsp = 7, r.rbp = 8;
  r.r8 = 9, r.r15 = 16, r.rip = 0xFFF0, r.rflags = 0x202;
  ASSERT_TRUE(vcpu_->SetRegisters(r));
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  EXPECT_EQ(fake_.hvcalls()[0].call.reps, 18);
  EXPECT_EQ(fake_.hvcalls()[0].call.in_sz, 16 + 18 * 32);
  EXPECT_EQ(Reg(HV_X64_REGISTER_RBX), 2u);  // 0x00020003, not the 2nd name
  EXPECT_EQ(Reg(HV_X64_REGISTER_RSP), 7u);
  EXPECT_EQ(Reg(HV_X64_REGISTER_RFLAGS), 0x202u);
  auto got = vcpu_->GetRegisters();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, r);
  EXPECT_EQ(fake_.hvcalls()[1].call.reps, 18);
  EXPECT_EQ(fake_.hvcalls()[1].call.in_sz, 16 + 18 * 4);
  EXPECT_EQ(fake_.hvcalls()[1].call.out_sz, 18 * 16);
}

TEST_F(MshvVcpuTest, SpecialRegistersEncodeSegmentsAndTables) {
  SpecialRegisters s;
  s.cs = SegmentRegister{0, 0xFFFFFFFF, 0x8, 0xB, 1, 0, 0, 1, 1, 1, 0, false};
  s.ds = s.es = s.fs = s.gs = s.ss =
      SegmentRegister{0, 0xFFFFFFFF, 0x10, 0x3, 1, 0, 1, 1, 0, 1, 0, false};
  s.tr = SegmentRegister{0x5000, 0x67, 0x18, 0xB, 1, 0, 0, 0, 0, 0, 0, false};
  s.ldt = SegmentRegister{0, 0, 0, 0x2, 0, 0, 0, 0, 0, 0, 0, true};
  s.gdt = {0x6000, 0x27};
  s.idt = {0x7000, 0xFFF};
  s.cr0 = 0x80050033, s.cr3 = 0x9000, s.cr4 = 0x6A0, s.efer = 0xD01, s.apic_base = 0xFEE00900;
  ASSERT_TRUE(vcpu_->SetSpecialRegisters(s));
  EXPECT_EQ(fake_.hvcalls()[0].call.reps, 17);
  const hv_register_value cs = fake_.vp(0).registers[HV_X64_REGISTER_CS];
  EXPECT_EQ(cs.low, 0u);                                        // base
  EXPECT_EQ(cs.high, 0xFFFFFFFFull | 0x8ull << 32 | 0xA09Bull << 48);  // limit, sel, attributes
  const hv_register_value gdt = fake_.vp(0).registers[HV_X64_REGISTER_GDTR];
  EXPECT_EQ(gdt.low, 0x27ull << 48);  // pad[3], limit
  EXPECT_EQ(gdt.high, 0x6000u);       // base
  auto got = vcpu_->GetSpecialRegisters();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, s);
}

TEST_F(MshvVcpuTest, FpuGoesThroughTheXsaveLegacyRegion) {
  auto& xsave = fake_.vp(0).xsave;
  xsave[600] = 0x77;  // AVX state beyond the legacy region must survive SetFpu
  FpuState f;
  f.fcw = 0x27F, f.fsw = 0x1, f.ftwx = 0x80, f.mxcsr = 0x1FA0;
  f.fpr[0][0] = 0x11;
  f.xmm[15][15] = 0x99;
  ASSERT_TRUE(vcpu_->SetFpu(f));
  EXPECT_EQ(xsave[0], 0x7F);
  EXPECT_EQ(xsave[1], 0x02);
  EXPECT_EQ(xsave[4], 0x80);
  EXPECT_EQ(xsave[24], 0xA0);
  EXPECT_EQ(xsave[32], 0x11);
  EXPECT_EQ(xsave[160 + 15 * 16 + 15], 0x99);
  EXPECT_EQ(xsave[600], 0x77);
  auto got = vcpu_->GetFpu();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, f);
}

TEST_F(MshvVcpuTest, MsrsWithHyperVNamesGoInOneCall) {
  SetReg(HV_X64_REGISTER_EFER, 0xD01);
  SetReg(HV_X64_REGISTER_TSC, 12345);
  MsrEntry msrs[] = {{0xC0000080, 0}, {0x10, 0}};
  ASSERT_TRUE(vcpu_->GetMsrs(msrs));
  EXPECT_EQ(msrs[0].value, 0xD01u);
  EXPECT_EQ(msrs[1].value, 12345u);
  EXPECT_EQ(fake_.hvcalls().size(), 1u);
  const MsrEntry set[] = {{0x1B, 0xFEE00800}};
  ASSERT_TRUE(vcpu_->SetMsrs(set));
  EXPECT_EQ(Reg(HV_X64_REGISTER_APIC_BASE), 0xFEE00800u);
}

TEST_F(MshvVcpuTest, UnknownMsrIsRefusedBeforeTheCall) {
  MsrEntry msrs[] = {{0x10, 0}, {0xC0010015, 0}};
  auto s = vcpu_->GetMsrs(msrs);
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().detail, HasSubstr("0xc0010015"));
  EXPECT_TRUE(fake_.hvcalls().empty());
}

}  // namespace
}  // namespace virt::mshv::test
