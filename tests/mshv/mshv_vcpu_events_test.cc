// VcpuEvents <-> HV_REGISTER_PENDING_INTERRUPTION / _INTERRUPT_STATE / _PENDING_EVENT0 bit layouts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "mshv_vcpu_events.h"

namespace virt::mshv {
namespace {

using ::testing::HasSubstr;

// hv_x64_pending_interruption_register, field by field as the header lays it out.
uint64_t Interruption(uint32_t type, uint32_t vector, bool error_code, uint32_t code) {
  return 1u | uint64_t{type} << 1 | uint64_t{error_code} << 4 | uint64_t{vector} << 16 |
         uint64_t{code} << 32;
}

TEST(MshvVcpuEvents, AnInjectedExceptionHasTypeThreeVectorAndErrorCode) {
  VcpuEvents e;
  e.exception.injected = true;
  e.exception.vector = 13;
  e.exception.has_error_code = true;
  e.exception.error_code = 0x18;
  auto hv = EventsToHv(e);
  ASSERT_TRUE(hv.has_value()) << hv.error().Message();
  EXPECT_EQ(hv->pending_interruption.low, Interruption(3, 13, true, 0x18));
  EXPECT_EQ(hv->pending_interruption.low, 0x00000018'000D0017ull);
  EXPECT_EQ(hv->interrupt_state.low, 0u);
  EXPECT_EQ(hv->pending_event.low, 0u);
  auto back = EventsFromHv(*hv);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, e);
}

TEST(MshvVcpuEvents, InterruptNmiShadowAndMaskingUseTheirBits) {
  VcpuEvents irq;
  irq.interrupt.injected = true;
  irq.interrupt.vector = 0x30;
  irq.interrupt.shadow = 1;
  irq.nmi.masked = true;
  auto hv = EventsToHv(irq);
  ASSERT_TRUE(hv.has_value());
  EXPECT_EQ(hv->pending_interruption.low, 0x00300001u);  // type 0, vector 0x30
  EXPECT_EQ(hv->interrupt_state.low, 3u);                // shadow | NMI masked
  EXPECT_EQ(*EventsFromHv(*hv), irq);

  VcpuEvents nmi;
  nmi.nmi.injected = true;
  hv = EventsToHv(nmi);
  ASSERT_TRUE(hv.has_value());
  EXPECT_EQ(hv->pending_interruption.low, 0x00020005u);  // type 2, vector 2
  EXPECT_EQ(*EventsFromHv(*hv), nmi);
}

TEST(MshvVcpuEvents, APendingPageFaultCarriesCr2AsItsParameter) {
  VcpuEvents e;
  e.exception.pending = true;
  e.exception.vector = 14;
  e.exception.has_error_code = true;
  e.exception.error_code = 2;
  e.exception.payload = 0xDEAD000;
  auto hv = EventsToHv(e);
  ASSERT_TRUE(hv.has_value());
  // event_pending | type 0 | deliver_error_code (bit 8) | vector 14 << 16 | error code << 32.
  EXPECT_EQ(hv->pending_event.low, 0x00000002'000E0101ull);
  EXPECT_EQ(hv->pending_event.high, 0xDEAD000u);
  EXPECT_EQ(hv->pending_interruption.low, 0u);
  EXPECT_EQ(*EventsFromHv(*hv), e);
}

TEST(MshvVcpuEvents, WhatMshvCannotHoldIsRefused) {
  auto code = [](const VcpuEvents& e) { return EventsToHv(e).error().code; };
  VcpuEvents two;
  two.interrupt.injected = true;
  two.nmi.injected = true;
  EXPECT_EQ(code(two), ErrorCode::kInvalidArgument);
  VcpuEvents both;
  both.exception.injected = both.exception.pending = true;
  EXPECT_EQ(code(both), ErrorCode::kInvalidArgument);
  VcpuEvents soft;
  soft.interrupt.injected = soft.interrupt.soft = true;
  EXPECT_EQ(code(soft), ErrorCode::kUnavailable);
  VcpuEvents nmi_pending;
  nmi_pending.nmi.pending = true;
  EXPECT_EQ(code(nmi_pending), ErrorCode::kUnavailable);
  VcpuEvents smm;
  smm.smi.smm = true;
  EXPECT_EQ(code(smm), ErrorCode::kUnavailable);
  VcpuEvents sipi;
  sipi.sipi_vector = 0x9A;
  EXPECT_EQ(code(sipi), ErrorCode::kUnavailable);
  VcpuEvents triple;
  triple.triple_fault_pending = true;
  EXPECT_EQ(code(triple), ErrorCode::kUnavailable);
  VcpuEvents payload;
  payload.exception.injected = true;
  payload.exception.payload = 1;
  EXPECT_EQ(code(payload), ErrorCode::kUnavailable);
}

TEST(MshvVcpuEvents, RegistersWithoutAVcpuEventsFormAreUnavailableOnSave) {
  HvEventRegisters soft;  // type 4: software interrupt
  soft.pending_interruption.low = Interruption(4, 0x80, false, 0);
  auto r = EventsFromHv(soft);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().detail, HasSubstr("0x800009"));
  HvEventRegisters nested;
  nested.pending_interruption.low = Interruption(3, 6, false, 0) | (1u << 9);
  EXPECT_EQ(EventsFromHv(nested).error().code, ErrorCode::kUnavailable);
  HvEventRegisters other;  // a pending event of type 5 (EXT_INT)
  other.pending_event.low = 1u | 5u << 1;
  EXPECT_EQ(EventsFromHv(other).error().code, ErrorCode::kUnavailable);
  HvEventRegisters two;
  two.pending_interruption.low = Interruption(3, 13, true, 0);
  two.pending_event.low = 1u | 14u << 16;
  EXPECT_EQ(EventsFromHv(two).error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(EventsFromHv(HvEventRegisters{}).has_value());
  EXPECT_EQ(*EventsFromHv(HvEventRegisters{}), VcpuEvents{});
}

}  // namespace
}  // namespace virt::mshv
