// Checks WhpVcpu: exit decoding into VcpuExit, RIP advance and IN/MMIO completion, CPUID exits
// answered inside Run, sticky and cross-thread cancel, and the register batches' names/values.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_cpuid.h"

namespace virt::whp {
namespace {

using namespace std::chrono_literals;
using test::FakeWhp;

constexpr uint64_t kRip = 0x1000;

WHV_RUN_VP_EXIT_CONTEXT Exit(WHV_RUN_VP_EXIT_REASON reason, bool long_mode = true) {
  WHV_RUN_VP_EXIT_CONTEXT exit{};
  exit.ExitReason = reason;
  exit.VpContext.Rip = kRip;
  exit.VpContext.ExecutionState.Cr0Pe = 1;
  exit.VpContext.ExecutionState.EferLma = long_mode ? 1 : 0;
  exit.VpContext.Cs.Long = long_mode ? 1 : 0;
  exit.VpContext.Cs.Default = long_mode ? 0 : 1;
  return exit;
}

WHV_RUN_VP_EXIT_CONTEXT Io(uint16_t port, uint8_t size, bool write, uint64_t rax) {
  auto exit = Exit(WHvRunVpExitReasonX64IoPortAccess);
  exit.VpContext.InstructionLength = 2;
  exit.IoPortAccess.PortNumber = port;
  exit.IoPortAccess.AccessInfo.AccessSize = size;
  exit.IoPortAccess.AccessInfo.IsWrite = write ? 1 : 0;
  exit.IoPortAccess.Rax = rax;
  return exit;
}

WHV_RUN_VP_EXIT_CONTEXT Mmio(uint64_t gpa, bool write, std::vector<uint8_t> bytes) {
  auto exit = Exit(WHvRunVpExitReasonMemoryAccess);
  exit.MemoryAccess.Gpa = gpa;
  exit.MemoryAccess.AccessInfo.AccessType = write ? WHvMemoryAccessWrite : WHvMemoryAccessRead;
  exit.MemoryAccess.InstructionByteCount = static_cast<UINT8>(bytes.size());
  std::memcpy(exit.MemoryAccess.InstructionBytes, bytes.data(), bytes.size());
  return exit;
}

class WhpVcpuTest : public testing::Test {
 protected:
  void SetUp() override {
    auto h = WhpHypervisor::Create(fake_.api(), {.tsc_hz = 4'400'000'000});
    ASSERT_TRUE(h.has_value());
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = true});
    ASSERT_TRUE(p.has_value());
    partition_ = std::move(*p);
    auto v = partition_->CreateVcpu(0);
    ASSERT_TRUE(v.has_value());
    vcpu_ = std::move(*v);
  }

  VcpuExit MustRun() {
    auto exit = vcpu_->Run();
    EXPECT_TRUE(exit.has_value()) << (exit ? "" : exit.error().Message());
    return exit ? *exit : VcpuExit{UnknownExit{}};
  }
  uint64_t Reg(WHV_REGISTER_NAME name) { return fake_.reg(0, name).Reg64; }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<Vcpu> vcpu_;
};

TEST_F(WhpVcpuTest, OutIsDecodedAndRipAdvancedByTheInstructionLength) {
  fake_.QueueExit(0, Io(0x3f8, 1, /*write=*/true, 0x1122334455667748));
  const VcpuExit exit = MustRun();
  const auto* io = std::get_if<IoExit>(&exit);
  ASSERT_NE(io, nullptr) << ExitName(exit);
  EXPECT_EQ(io->port, 0x3f8);
  EXPECT_EQ(io->size, 1);
  EXPECT_TRUE(io->is_write);
  EXPECT_EQ(io->value(), 0x48u);
  EXPECT_EQ(Reg(WHvX64RegisterRip), kRip + 2);
}

TEST_F(WhpVcpuTest, InCompletesIntoRaxKeepingTheUpperBits) {
  fake_.QueueExit(0, Io(0x60, 2, /*write=*/false, 0xAAAABBBBCCCCDDDD));
  const VcpuExit exit = MustRun();
  ASSERT_TRUE(std::holds_alternative<IoExit>(exit));
  EXPECT_EQ(Reg(WHvX64RegisterRip), 0u) << "RIP must not move before the IN completes";
  const uint8_t wrong[1] = {0};
  EXPECT_EQ(vcpu_->CompleteIoIn(wrong).error().code, ErrorCode::kInvalidArgument);
  const uint8_t data[2] = {0x34, 0x12};
  ASSERT_TRUE(vcpu_->CompleteIoIn(data).has_value());
  EXPECT_EQ(Reg(WHvX64RegisterRax), 0xAAAABBBBCCCC1234u);
  EXPECT_EQ(Reg(WHvX64RegisterRip), kRip + 2);
  EXPECT_EQ(vcpu_->CompleteIoIn(data).error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(WhpVcpuTest, AnUnansweredInReadsAllOnes) {
  fake_.QueueExit(0, Io(0x60, 4, /*write=*/false, 0xAAAABBBBCCCCDDDD));
  ASSERT_TRUE(std::holds_alternative<IoExit>(MustRun()));
  ASSERT_TRUE(std::holds_alternative<HaltExit>(MustRun()));
  EXPECT_EQ(Reg(WHvX64RegisterRax), 0xFFFFFFFFu);  // IN EAX zero-extends
  EXPECT_EQ(Reg(WHvX64RegisterRip), kRip + 2);
}

TEST_F(WhpVcpuTest, StringPortIoIsUnsupported) {
  auto exit = Io(0x3f8, 1, true, 0);
  exit.IoPortAccess.AccessInfo.StringOp = 1;
  exit.IoPortAccess.AccessInfo.RepPrefix = 1;
  exit.IoPortAccess.InstructionByteCount = 2;
  exit.IoPortAccess.InstructionBytes[0] = 0xF3;
  exit.IoPortAccess.InstructionBytes[1] = 0x6E;
  fake_.QueueExit(0, exit);
  const VcpuExit decoded = MustRun();
  const auto* u = std::get_if<UnsupportedInstructionExit>(&decoded);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->address, 0x3f8u);
  EXPECT_EQ(u->length, 2);
  EXPECT_EQ(u->bytes[1], 0x6E);
  EXPECT_EQ(Reg(WHvX64RegisterRip), 0u);
}

TEST_F(WhpVcpuTest, MmioWriteTakesTheSourceRegister) {
  fake_.set_reg(0, WHvX64RegisterRcx, 0xFFFFFFFF00C0FFEE);
  fake_.QueueExit(0, Mmio(0xFEB00000, /*write=*/true, {0x89, 0x08}));  // mov [rax], ecx
  const VcpuExit exit = MustRun();
  const auto* mmio = std::get_if<MmioExit>(&exit);
  ASSERT_NE(mmio, nullptr) << ExitName(exit);
  EXPECT_EQ(mmio->address, 0xFEB00000u);
  EXPECT_EQ(mmio->size, 4);
  EXPECT_TRUE(mmio->is_write);
  EXPECT_EQ(mmio->value, 0x00C0FFEEu);
  EXPECT_EQ(Reg(WHvX64RegisterRip), kRip + 2);
}

TEST_F(WhpVcpuTest, MmioReadCompletesIntoTheDestination) {
  fake_.set_reg(0, WHvX64RegisterRax, 0x1111111111111111);
  fake_.QueueExit(0, Mmio(0xFEB00010, /*write=*/false, {0x8B, 0x01}));  // mov eax, [rcx]
  const VcpuExit exit = MustRun();
  ASSERT_TRUE(std::holds_alternative<MmioExit>(exit));
  ASSERT_TRUE(vcpu_->CompleteMmioRead(0x1234).has_value());
  EXPECT_EQ(Reg(WHvX64RegisterRax), 0x1234u);  // 32-bit destination zero-extends
  EXPECT_EQ(Reg(WHvX64RegisterRip), kRip + 2);
}

TEST_F(WhpVcpuTest, MmioInstructionsTheDecoderRejectsAreUnsupported) {
  fake_.QueueExit(0, Mmio(0xFEB00000, /*write=*/true, {0x0F, 0x0B}));  // ud2
  const VcpuExit exit = MustRun();
  const auto* u = std::get_if<UnsupportedInstructionExit>(&exit);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->address, 0xFEB00000u);
  EXPECT_EQ(Reg(WHvX64RegisterRip), 0u);
}

TEST_F(WhpVcpuTest, CpuidLeaf15IsAnsweredInsideRun) {
  auto cpuid = Exit(WHvRunVpExitReasonX64Cpuid);
  cpuid.VpContext.InstructionLength = 2;
  cpuid.CpuidAccess.Rax = 0x15;
  cpuid.CpuidAccess.DefaultResultRbx = 0xDEAD;  // the host's value, overridden
  fake_.QueueExit(0, cpuid);
  ASSERT_TRUE(std::holds_alternative<HaltExit>(MustRun()));  // the VMM never saw the CPUID
  const WHV_X64_CPUID_RESULT expected = TscFrequencyLeaf(4'400'000'000);
  EXPECT_EQ(Reg(WHvX64RegisterRax), expected.Eax);
  EXPECT_EQ(Reg(WHvX64RegisterRbx), expected.Ebx);
  EXPECT_EQ(Reg(WHvX64RegisterRcx), expected.Ecx);
  EXPECT_EQ(Reg(WHvX64RegisterRip), kRip + 2);
}

TEST_F(WhpVcpuTest, OtherCpuidLeavesGetTheDefaultResult) {
  auto cpuid = Exit(WHvRunVpExitReasonX64Cpuid);
  cpuid.VpContext.InstructionLength = 2;
  cpuid.CpuidAccess.Rax = 1;
  cpuid.CpuidAccess.DefaultResultRax = 0x906ED;
  cpuid.CpuidAccess.DefaultResultRdx = 0xBFEBFBFF;
  fake_.QueueExit(0, cpuid);
  ASSERT_TRUE(std::holds_alternative<HaltExit>(MustRun()));
  EXPECT_EQ(Reg(WHvX64RegisterRax), 0x906EDu);
  EXPECT_EQ(Reg(WHvX64RegisterRdx), 0xBFEBFBFFu);
}

TEST_F(WhpVcpuTest, OtherExitReasonsMapToTheSharedExitTypes) {
  fake_.QueueExit(0, Exit(WHvRunVpExitReasonUnrecoverableException));
  EXPECT_TRUE(std::holds_alternative<ShutdownExit>(MustRun()));
  auto feature = Exit(WHvRunVpExitReasonUnsupportedFeature);
  feature.UnsupportedFeature.FeatureCode = static_cast<decltype(feature.UnsupportedFeature.FeatureCode)>(2);
  feature.UnsupportedFeature.FeatureParameter = 0x77;
  fake_.QueueExit(0, feature);
  const VcpuExit internal = MustRun();
  const auto* ie = std::get_if<InternalErrorExit>(&internal);
  ASSERT_NE(ie, nullptr);
  EXPECT_EQ(ie->suberror, uint32_t{WHvRunVpExitReasonUnsupportedFeature});
  EXPECT_EQ(ie->data[0], 2u);
  EXPECT_EQ(ie->data[1], 0x77u);
  fake_.QueueExit(0, Exit(WHvRunVpExitReasonX64ApicEoi));
  const VcpuExit eoi = MustRun();
  ASSERT_TRUE(std::holds_alternative<UnknownExit>(eoi));
  EXPECT_EQ(std::get<UnknownExit>(eoi).reason, uint32_t{WHvRunVpExitReasonX64ApicEoi});
}

// Found by fuzz_whp_exit: a reason outside the enum's range (a newer WHP's, or garbage) was
// loaded as WHV_RUN_VP_EXIT_REASON, which is undefined (UBSan, asan preset: "load of value
// 663306, which is not a valid value"). It is an UnknownExit carrying the raw value.
TEST_F(WhpVcpuTest, AnExitReasonOutsideTheEnumIsAnUnknownExitWithTheRawValue) {
  for (uint32_t raw : {0x000A1F0Au, 0x80000001u, 0xFFFFFFFFu}) {
    auto exit = Exit(WHvRunVpExitReasonNone);
    std::memcpy(&exit.ExitReason, &raw, sizeof raw);
    fake_.QueueExit(0, exit);
    const VcpuExit got = MustRun();
    ASSERT_TRUE(std::holds_alternative<UnknownExit>(got)) << std::hex << raw;
    EXPECT_EQ(std::get<UnknownExit>(got).reason, raw);
  }
}

TEST_F(WhpVcpuTest, ARunFailureIsReported) {
  fake_.FailNext("RunVirtualProcessor", kHrInvalidArg);
  auto exit = vcpu_->Run();
  ASSERT_FALSE(exit.has_value());
  EXPECT_STREQ(exit.error().operation, "WHvRunVirtualProcessor");
}

TEST_F(WhpVcpuTest, ACancelBeforeRunIsStickyAndConsumedByOneRun) {
  vcpu_->Cancel();
  vcpu_->Cancel();  // still one cancellation: WHP keeps a flag, not a count
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(MustRun()));
  EXPECT_TRUE(std::holds_alternative<HaltExit>(MustRun()));
}

TEST_F(WhpVcpuTest, CancelFromAnotherThreadEndsABlockedRun) {
  fake_.set_run_blocks(true);
  Result<VcpuExit> result = Error::Make(ErrorCode::kNative, "not run");
  std::thread runner([&] { result = vcpu_->Run(); });
  ASSERT_TRUE(fake_.WaitUntilRunning(10s));
  vcpu_->Cancel();
  runner.join();
  ASSERT_TRUE(result.has_value()) << result.error().Message();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(*result));
  EXPECT_FALSE(fake_.cancel_pending(0));
}

TEST_F(WhpVcpuTest, GeneralRegistersRoundTripInOneCallEach) {
  Registers regs;
  regs.rax = 1;
  regs.rbx = 2;
  regs.r15 = 15;
  regs.rip = 0x7c00;
  regs.rflags = 0x202;
  fake_.ClearLog();
  ASSERT_TRUE(vcpu_->SetRegisters(regs).has_value());
  EXPECT_EQ(Reg(WHvX64RegisterRbx), 2u);
  EXPECT_EQ(Reg(WHvX64RegisterR15), 15u);
  EXPECT_EQ(Reg(WHvX64RegisterRip), 0x7c00u);
  EXPECT_EQ(Reg(WHvX64RegisterRflags), 0x202u);
  auto back = vcpu_->GetRegisters();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, regs);
  EXPECT_EQ(fake_.log(), (std::vector<std::string>{"SetVirtualProcessorRegisters",
                                                    "GetVirtualProcessorRegisters"}));
}

TEST_F(WhpVcpuTest, SpecialRegistersConvertSegmentAttributes) {
  SpecialRegisters sregs;
  sregs.cs = {.base = 0, .limit = 0xFFFFF, .selector = 0x8, .type = 0xB, .present = 1,
              .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1, .avl = 0, .unusable = false};
  sregs.ds = {.base = 0x1000, .limit = 0xFFFF, .selector = 0x10, .type = 3, .present = 1,
              .dpl = 3, .db = 1, .s = 1, .l = 0, .g = 0, .avl = 1, .unusable = false};
  sregs.fs.unusable = true;
  sregs.gdt = {0x5000, 0x27};
  sregs.idt = {0x6000, 0xFFF};
  sregs.cr0 = 0x80000011;
  sregs.cr3 = 0x9000;
  sregs.cr4 = 0x20;
  sregs.efer = 0x500;
  sregs.apic_base = 0xFEE00900;
  ASSERT_TRUE(vcpu_->SetSpecialRegisters(sregs).has_value());
  const auto cs = fake_.reg(0, WHvX64RegisterCs).Segment;
  EXPECT_EQ(cs.Selector, 0x8);
  EXPECT_EQ(cs.Attributes, 0xB | (1 << 4) | (1 << 7) | (1 << 13) | (1 << 15));
  EXPECT_EQ(fake_.reg(0, WHvX64RegisterDs).Segment.Attributes,
            3 | (1 << 4) | (3 << 5) | (1 << 7) | (1 << 12) | (1 << 14));
  EXPECT_EQ(fake_.reg(0, WHvX64RegisterGdtr).Table.Limit, 0x27);
  EXPECT_EQ(fake_.reg(0, WHvX64RegisterEfer).Reg64, 0x500u);
  auto back = vcpu_->GetSpecialRegisters();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->cs, sregs.cs);
  EXPECT_EQ(back->ds, sregs.ds);
  EXPECT_TRUE(back->fs.unusable);
  EXPECT_EQ(back->gdt, sregs.gdt);
  EXPECT_EQ(back->idt, sregs.idt);
  EXPECT_EQ(back->cr0, sregs.cr0);
  EXPECT_EQ(back->apic_base, sregs.apic_base);
}

TEST_F(WhpVcpuTest, FpuStateRoundTrips) {
  FpuState fpu;
  fpu.fcw = 0x27F;
  fpu.fsw = 0x4000;
  fpu.ftwx = 0x80;
  fpu.mxcsr = 0x1FA0;
  fpu.fpr[7][0] = 0x11;
  fpu.xmm[15][15] = 0x99;
  ASSERT_TRUE(vcpu_->SetFpu(fpu).has_value());
  EXPECT_EQ(fake_.reg(0, WHvX64RegisterFpControlStatus).FpControlStatus.FpControl, 0x27F);
  EXPECT_EQ(fake_.reg(0, WHvX64RegisterXmmControlStatus).XmmControlStatus.XmmStatusControl,
            0x1FA0u);
  auto back = vcpu_->GetFpu();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, fpu);
}

TEST_F(WhpVcpuTest, MsrsMapToWhpRegisterNames) {
  MsrEntry set[] = {{0xC0000082, 0xFFFF800000001000}, {0x10, 12345}, {0x277, 0x0007040600070406}};
  ASSERT_TRUE(vcpu_->SetMsrs(set).has_value());
  EXPECT_EQ(Reg(WHvX64RegisterLstar), 0xFFFF800000001000u);
  EXPECT_EQ(Reg(WHvX64RegisterTsc), 12345u);
  EXPECT_EQ(Reg(WHvX64RegisterPat), 0x0007040600070406u);
  MsrEntry get[] = {{0x10, 0}, {0xC0000082, 0}};
  ASSERT_TRUE(vcpu_->GetMsrs(get).has_value());
  EXPECT_EQ(get[0].value, 12345u);
  EXPECT_EQ(get[1].value, 0xFFFF800000001000u);
}

TEST_F(WhpVcpuTest, AnUnknownMsrFailsBeforeAnyCall) {
  fake_.ClearLog();
  MsrEntry msrs[] = {{0x10, 0}, {0x3A, 0}};
  auto s = vcpu_->GetMsrs(msrs);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(s.error().detail.find("0x3a"), std::string::npos) << s.error().detail;
  EXPECT_TRUE(fake_.log().empty());
}

TEST_F(WhpVcpuTest, RegisterCallFailuresAreReported) {
  fake_.FailNext("GetVirtualProcessorRegisters", kHrInvalidArg);
  auto regs = vcpu_->GetRegisters();
  ASSERT_FALSE(regs.has_value());
  EXPECT_STREQ(regs.error().operation, "WHvGetVirtualProcessorRegisters");
  fake_.FailNext("SetVirtualProcessorRegisters", kHrInvalidArg);
  EXPECT_FALSE(vcpu_->SetFpu(FpuState{}).has_value());
}

TEST_F(WhpVcpuTest, AFailedRipAdvanceIsReportedAndTheExitNotReturned) {
  fake_.QueueExit(0, Io(0x3f8, 1, /*write=*/true, 0x41));
  fake_.FailNext("SetVirtualProcessorRegisters", kHrInvalidArg);
  auto exit = vcpu_->Run();
  ASSERT_FALSE(exit.has_value());
  EXPECT_STREQ(exit.error().operation, "WHvSetVirtualProcessorRegisters");
}

}  // namespace
}  // namespace virt::whp
