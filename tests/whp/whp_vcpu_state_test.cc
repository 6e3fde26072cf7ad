// Checks WhpVcpuState: the parts a WHP vCPU saves, the exact WHv calls and register names of each,
// the event registers' bit layout, a save/restore round trip through bytes, and refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_vcpu_events.h"

namespace virt::whp {
namespace {

using test::FakeWhp;
using testing::_;

TEST(WhpVcpuEventsTest, AnInjectedExceptionHasTheSdkBitLayout) {
  VcpuEvents e;
  e.exception.injected = true;
  e.exception.vector = 14;
  e.exception.has_error_code = true;
  e.exception.error_code = 2;
  e.interrupt.shadow = 1;
  e.nmi.masked = true;
  auto whp = EventsToWhp(e);
  ASSERT_TRUE(whp.has_value()) << whp.error().Message();
  // Pending (bit 0), type 3 (bits 1-3), DeliverErrorCode (bit 4), vector 14 (bits 16-31),
  // error code in the high half.
  EXPECT_EQ(whp->pending_interruption.Reg64, 0x00000002000E0017u);
  EXPECT_EQ(whp->interrupt_state.Reg64, 3u);  // InterruptShadow | NmiMasked
  EXPECT_EQ(whp->pending_event.Reg128.Low64, 0u);
  auto back = EventsFromWhp(*whp);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, e);
}

TEST(WhpVcpuEventsTest, APendingPageFaultCarriesItsAddressAsTheParameter) {
  VcpuEvents e;
  e.exception.pending = true;
  e.exception.vector = 14;
  e.exception.has_error_code = true;
  e.exception.error_code = 6;
  e.exception.payload = 0xdead0000;
  auto whp = EventsToWhp(e);
  ASSERT_TRUE(whp.has_value());
  // EventPending (bit 0), type 0, DeliverErrorCode (bit 8), vector (bits 16-31), error code.
  EXPECT_EQ(whp->pending_event.Reg128.Low64, 0x00000006000E0101u);
  EXPECT_EQ(whp->pending_event.Reg128.High64, 0xdead0000u);
  EXPECT_EQ(whp->pending_interruption.Reg64, 0u);
  EXPECT_EQ(*EventsFromWhp(*whp), e);
}

TEST(WhpVcpuEventsTest, InterruptAndNmiBeingDelivered) {
  VcpuEvents irq;
  irq.interrupt.injected = true;
  irq.interrupt.vector = 0x30;
  EXPECT_EQ(EventsToWhp(irq)->pending_interruption.Reg64, 0x00300001u);  // type 0
  VcpuEvents nmi;
  nmi.nmi.injected = true;
  EXPECT_EQ(EventsToWhp(nmi)->pending_interruption.Reg64, 0x00020005u);  // type 2, vector 2
  EXPECT_EQ(*EventsFromWhp(*EventsToWhp(irq)), irq);
  EXPECT_EQ(*EventsFromWhp(*EventsToWhp(nmi)), nmi);
}

TEST(WhpVcpuEventsTest, WhatWhpCannotHoldIsRefused) {
  VcpuEvents soft;
  soft.interrupt.injected = true;
  soft.interrupt.soft = true;
  EXPECT_EQ(EventsToWhp(soft).error().code, ErrorCode::kUnavailable);
  VcpuEvents smm;
  smm.smi.smm = true;
  EXPECT_EQ(EventsToWhp(smm).error().code, ErrorCode::kUnavailable);
  VcpuEvents two;
  two.nmi.injected = true;
  two.interrupt.injected = true;
  EXPECT_EQ(EventsToWhp(two).error().code, ErrorCode::kInvalidArgument);

  WhpEventRegisters nested;
  nested.pending_interruption.Reg64 = 0x00300001u | (1u << 9);  // NestedEvent
  auto e = EventsFromWhp(nested);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(e.error().Message().find("0x300201"), std::string::npos) << e.error().Message();
  WhpEventRegisters ext_int;
  ext_int.pending_event.Reg128.Low64 = 1u | (5u << 1);  // WHvX64PendingEventExtInt
  EXPECT_EQ(EventsFromWhp(ext_int).error().code, ErrorCode::kUnavailable);
}

class WhpVcpuStateTest : public testing::Test {
 protected:
  void Make(bool irqchip = true) {
    auto h = WhpHypervisor::Create(fake_.api());
    ASSERT_TRUE(h.has_value());
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = irqchip});
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
    auto v = partition_->CreateVcpu(0);
    ASSERT_TRUE(v.has_value());
    vcpu_ = std::move(*v);
    ASSERT_NE(vcpu_->state(), nullptr);
  }
  VcpuStateControl& state() { return *vcpu_->state(); }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<Vcpu> vcpu_;
};

TEST_F(WhpVcpuStateTest, WithLapicEmulationEveryPartIsSupported) {
  Make();
  const auto parts = state().supported_parts();
  EXPECT_TRUE(std::equal(parts.begin(), parts.end(), kVcpuRestoreOrder.begin(),
                         kVcpuRestoreOrder.end()));
}

TEST_F(WhpVcpuStateTest, WithoutLapicEmulationTheMpStateAndLapicAreUnavailable) {
  Make(/*irqchip=*/false);
  const auto parts = state().supported_parts();
  EXPECT_EQ(std::count(parts.begin(), parts.end(), VcpuStatePart::kLapic), 0);
  EXPECT_EQ(std::count(parts.begin(), parts.end(), VcpuStatePart::kMpState), 0);
  EXPECT_EQ(parts.size(), kVcpuRestoreOrder.size() - 2);
  const VcpuStatePart lapic[] = {VcpuStatePart::kLapic};
  auto saved = state().SaveState(lapic);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(saved.error().Message().find("lapic"), std::string::npos);
}

TEST_F(WhpVcpuStateTest, WithoutCpuidOutputTheCpuidPartIsUnavailable) {
  fake_.set_has_cpuid_output(false);
  Make();
  const auto parts = state().supported_parts();
  EXPECT_EQ(std::count(parts.begin(), parts.end(), VcpuStatePart::kCpuid), 0);
}

TEST_F(WhpVcpuStateTest, EachRegisterPartReadsItsExactNames) {
  Make();
  std::vector<std::vector<WHV_REGISTER_NAME>> reads;
  EXPECT_CALL(fake_.mock(), GetVirtualProcessorRegisters(_, 0u, _, _, _))
      .WillRepeatedly([&](WHV_PARTITION_HANDLE, uint32_t, const WHV_REGISTER_NAME* names,
                          uint32_t count, WHV_REGISTER_VALUE* values) {
        reads.emplace_back(names, names + count);
        for (uint32_t i = 0; i < count; ++i) values[i] = WHV_REGISTER_VALUE{};
        return Ok();
      });
  const VcpuStatePart parts[] = {VcpuStatePart::kXcrs, VcpuStatePart::kDebugRegisters,
                                 VcpuStatePart::kEvents, VcpuStatePart::kTsc,
                                 VcpuStatePart::kMsrs};
  auto saved = state().SaveState(parts);
  ASSERT_TRUE(saved.has_value()) << saved.error().Message();
  ASSERT_EQ(reads.size(), 5u);  // in restore order: MSRs, XCRs, debug, events, TSC
  EXPECT_EQ(reads[0].size(), 38u);
  EXPECT_EQ(reads[0][0], static_cast<WHV_REGISTER_NAME>(0x2005));   // SYSENTER_CS 0x174
  EXPECT_EQ(reads[0][10], static_cast<WHV_REGISTER_NAME>(0x200E));  // MTRR def type 0x2FF
  EXPECT_EQ(reads[0][11], static_cast<WHV_REGISTER_NAME>(0x2010));  // PhysBase0 0x200
  EXPECT_EQ(reads[0][12], static_cast<WHV_REGISTER_NAME>(0x2040));  // PhysMask0 0x201
  EXPECT_EQ(reads[0][26], static_cast<WHV_REGISTER_NAME>(0x2047));  // PhysMask7 0x20F
  EXPECT_EQ(reads[0][27], static_cast<WHV_REGISTER_NAME>(0x2070));  // Fix64k 0x250
  EXPECT_EQ(reads[0][37], static_cast<WHV_REGISTER_NAME>(0x207A));  // Fix4kF8000 0x26F
  EXPECT_EQ((*saved->msrs)[37].index, 0x26Fu);
  EXPECT_EQ(reads[1], std::vector<WHV_REGISTER_NAME>{static_cast<WHV_REGISTER_NAME>(0x27)});
  std::vector<WHV_REGISTER_NAME> debug;
  for (uint32_t name = 0x21; name <= 0x26; ++name) {
    debug.push_back(static_cast<WHV_REGISTER_NAME>(name));  // Dr0-Dr3, Dr6, Dr7
  }
  EXPECT_EQ(reads[2], debug);
  EXPECT_EQ(reads[3], (std::vector<WHV_REGISTER_NAME>{
                          static_cast<WHV_REGISTER_NAME>(0x80000000),
                          static_cast<WHV_REGISTER_NAME>(0x80000001),
                          static_cast<WHV_REGISTER_NAME>(0x80000002)}));
  EXPECT_EQ(reads[4], std::vector<WHV_REGISTER_NAME>{static_cast<WHV_REGISTER_NAME>(0x2000)});
}

TEST_F(WhpVcpuStateTest, XsaveIsReadIntoASixteenKibBufferAndKeptAtTheWrittenSize) {
  Make();
  EXPECT_CALL(fake_.mock(), GetVirtualProcessorXsaveState(_, 0u, _, 16384u, _))
      .WillOnce([](WHV_PARTITION_HANDLE, uint32_t, void* buffer, uint32_t, uint32_t* written) {
        std::memset(buffer, 0xAB, 832);
        *written = 832;
        return Ok();
      });
  const VcpuStatePart xsave[] = {VcpuStatePart::kXsave};
  auto saved = state().SaveState(xsave);
  ASSERT_TRUE(saved.has_value()) << saved.error().Message();
  EXPECT_EQ(*saved->xsave, std::vector<uint8_t>(832, 0xAB));

  EXPECT_CALL(fake_.mock(), SetVirtualProcessorXsaveState(_, 0u, _, 832u))
      .WillOnce([](WHV_PARTITION_HANDLE, uint32_t, const void* buffer, uint32_t size) {
        EXPECT_EQ(std::vector<uint8_t>(static_cast<const uint8_t*>(buffer),
                                       static_cast<const uint8_t*>(buffer) + size),
                  std::vector<uint8_t>(832, 0xAB));
        return Ok();
      });
  EXPECT_TRUE(state().RestoreState(*saved, RestoreMode::kStopOnFailure).has_value());
}

TEST_F(WhpVcpuStateTest, AnXsaveSizeWhpCannotTakeIsRefusedBeforeAnyCall) {
  Make();
  VcpuState s;
  s.backend = "whp";
  s.xsave = std::vector<uint8_t>(16385, 0);
  EXPECT_CALL(fake_.mock(), SetVirtualProcessorXsaveState(_, _, _, _)).Times(0);
  auto r = state().RestoreState(s, RestoreMode::kStopOnFailure);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(WhpVcpuStateTest, TheLapicIsOneRegisterPageThroughInterruptControllerState2) {
  Make();
  EXPECT_CALL(fake_.mock(), GetVirtualProcessorInterruptControllerState2(_, 0u, _, 4096u, _));
  const VcpuStatePart lapic[] = {VcpuStatePart::kLapic};
  auto saved = state().SaveState(lapic);
  ASSERT_TRUE(saved.has_value()) << saved.error().Message();
  EXPECT_EQ(*saved->lapic, fake_.lapic(0));

  VcpuState wrong = *saved;
  wrong.lapic->resize(1024);  // a KVM-sized page
  EXPECT_CALL(fake_.mock(), SetVirtualProcessorInterruptControllerState2(_, _, _, _)).Times(0);
  auto r = state().RestoreState(wrong, RestoreMode::kStopOnFailure);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(WhpVcpuStateTest, AShortLapicReadIsAnError) {
  Make();
  EXPECT_CALL(fake_.mock(), GetVirtualProcessorInterruptControllerState2(_, 0u, _, 4096u, _))
      .WillOnce([](WHV_PARTITION_HANDLE, uint32_t, void*, uint32_t, uint32_t* written) {
        *written = 1024;
        return Ok();
      });
  const VcpuStatePart lapic[] = {VcpuStatePart::kLapic};
  auto saved = state().SaveState(lapic);
  ASSERT_FALSE(saved.has_value());
  EXPECT_NE(saved.error().Message().find("1024"), std::string::npos);
}

TEST_F(WhpVcpuStateTest, AWholeStateRoundTripsThroughBytesIntoAFreshVcpu) {
  Make();
  fake_.set_reg(0, WHvX64RegisterRax, 0x1234);
  fake_.set_reg(0, WHvX64RegisterRip, 0x7c00);
  fake_.set_reg(0, WHvX64RegisterCr0, 0x11);
  fake_.set_reg(0, WHvX64RegisterXCr0, 0x7);
  fake_.set_reg(0, WHvX64RegisterDr7, 0x401);
  fake_.set_reg(0, WHvX64RegisterTsc, 987654321);
  fake_.set_reg(0, WHvX64RegisterPat, 0x0007040600070406);
  fake_.set_reg(0, WHvX64RegisterMsrMtrrDefType, 0xC06);
  fake_.set_reg(0, WHvRegisterInterruptState, 1);
  fake_.set_reg(0, WHvRegisterPendingInterruption, 0x00300001);  // vector 0x30 being delivered
  auto saved = state().SaveState();
  ASSERT_TRUE(saved.has_value()) << saved.error().Message();
  EXPECT_EQ(saved->parts().size(), kVcpuRestoreOrder.size());
  EXPECT_EQ(saved->events->interrupt.vector, 0x30);
  EXPECT_EQ(*saved->tsc, 987654321u);
  const std::vector<uint8_t> bytes = SerializeVcpuState(*saved);
  const std::vector<uint8_t> xsave = fake_.xsave(0);

  // A fresh partition and vCPU (another fake: nothing carried over but the bytes).
  FakeWhp other;
  auto h = WhpHypervisor::Create(other.api());
  auto p = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  auto v = (*p)->CreateVcpu(0);
  ASSERT_TRUE(v.has_value());
  auto parsed = ParseVcpuState(bytes, "whp");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().Message();
  auto restored = (*v)->state()->RestoreState(*parsed);
  ASSERT_TRUE(restored.has_value()) << restored.error().Message();
  EXPECT_EQ(other.reg(0, WHvX64RegisterRax).Reg64, 0x1234u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterRip).Reg64, 0x7c00u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterCr0).Reg64, 0x11u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterXCr0).Reg64, 0x7u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterDr7).Reg64, 0x401u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterTsc).Reg64, 987654321u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterPat).Reg64, 0x0007040600070406u);
  EXPECT_EQ(other.reg(0, WHvX64RegisterMsrMtrrDefType).Reg64, 0xC06u);
  EXPECT_EQ(other.reg(0, WHvRegisterPendingInterruption).Reg64, 0x00300001u);
  EXPECT_EQ(other.reg(0, WHvRegisterInterruptState).Reg64, 1u);
  EXPECT_EQ(other.xsave(0), xsave);
  EXPECT_EQ(other.lapic(0), fake_.lapic(0));
  auto again = (*v)->state()->SaveState();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *saved);
}

TEST_F(WhpVcpuStateTest, AnotherBackendsStateIsRefusedBeforeAnyCall) {
  Make();
  VcpuState kvm;
  kvm.backend = "kvm";
  kvm.tsc = 1;
  fake_.ClearLog();
  auto r = state().RestoreState(kvm);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake_.log().empty());
}

TEST_F(WhpVcpuStateTest, AFailedXsaveLoadPutsTheEarlierPartsBack) {
  Make();
  fake_.set_reg(0, WHvX64RegisterRax, 1);
  auto saved = state().SaveState();
  ASSERT_TRUE(saved.has_value());
  VcpuState changed = *saved;
  changed.registers->rax = 2;
  (*changed.xsave)[0] ^= 0xFF;
  fake_.FailNext("SetVirtualProcessorXsaveState", kHrAccessDenied);
  auto r = state().RestoreState(changed);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().native_code, int64_t{static_cast<uint32_t>(kHrAccessDenied)});
  EXPECT_NE(r.error().Message().find("restoring xsave failed"), std::string::npos);
  EXPECT_NE(r.error().Message().find("put back"), std::string::npos) << r.error().Message();
  EXPECT_EQ(fake_.reg(0, WHvX64RegisterRax).Reg64, 1u);
  EXPECT_EQ(*state().SaveState(), *saved);
}

}  // namespace
}  // namespace virt::whp
