// Checks WhpVcpuMpState: MpState <-> WHV_INTERNAL_ACTIVITY_REGISTER, the exact register read
// and written, states WHP cannot hold refused before any call, failures changing nothing.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_mp_state.h"

namespace virt::whp {
namespace {

using test::FakeWhp;

TEST(WhpMpStateMappingTest, EachRepresentableStateHasItsActivityBits) {
  EXPECT_EQ(ActivityFor(MpState::kRunnable), 0u);
  EXPECT_EQ(ActivityFor(MpState::kUninitialized), 1u);  // StartupSuspend
  EXPECT_EQ(ActivityFor(MpState::kHalted), 2u);         // HaltSuspend
  EXPECT_FALSE(ActivityFor(MpState::kInitReceived).has_value());
  EXPECT_FALSE(ActivityFor(MpState::kSipiReceived).has_value());

  EXPECT_EQ(MpStateFor(0), MpState::kRunnable);
  EXPECT_EQ(MpStateFor(1), MpState::kUninitialized);
  EXPECT_EQ(MpStateFor(2), MpState::kHalted);
  EXPECT_EQ(MpStateFor(3), MpState::kUninitialized);  // nothing runs before the SIPI
  EXPECT_FALSE(MpStateFor(4).has_value());            // IdleSuspend
  EXPECT_FALSE(MpStateFor(uint64_t{1} << 3).has_value());
}

// The union's bit-fields are the SDK's (run against the mingw-w64 types under Wine too).
TEST(WhpMpStateMappingTest, ActivityRegisterBitsMatchTheAbi) {
  WHV_INTERNAL_ACTIVITY_REGISTER r{};
  r.StartupSuspend = 1;
  EXPECT_EQ(r.AsUINT64, 1u);
  r.AsUINT64 = 0;
  r.HaltSuspend = 1;
  EXPECT_EQ(r.AsUINT64, 2u);
  r.AsUINT64 = 0;
  r.IdleSuspend = 1;
  EXPECT_EQ(r.AsUINT64, 4u);
  WHV_EXTENDED_VM_EXITS e{};
  e.X64ApicInitSipiExitTrap = 1;
  EXPECT_EQ(e.AsUINT64, 0x40u);
}

class WhpMpStateTest : public testing::Test {
 protected:
  void SetUp() override {
    auto h = WhpHypervisor::Create(fake_.api());
    ASSERT_TRUE(h.has_value());
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = 2, .irqchip = true});
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
    auto v = partition_->CreateVcpu(1);
    ASSERT_TRUE(v.has_value());
    ap_ = std::move(*v);
    ASSERT_NE(ap_->mp_state(), nullptr);
  }
  uint64_t Activity() { return fake_.reg(1, WHvRegisterInternalActivityState).Reg64; }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<Vcpu> ap_;
};

TEST_F(WhpMpStateTest, GetReadsTheInternalActivityRegister) {
  WHV_REGISTER_NAME name{};
  EXPECT_CALL(fake_.mock(), GetVirtualProcessorRegisters(testing::_, 1u, testing::_, 1u,
                                                         testing::_))
      .WillOnce([&](WHV_PARTITION_HANDLE, uint32_t, const WHV_REGISTER_NAME* names, uint32_t,
                    WHV_REGISTER_VALUE* values) {
        name = names[0];
        values[0] = WHV_REGISTER_VALUE{};
        values[0].Reg64 = 2;
        return Ok();
      });
  auto state = ap_->mp_state()->GetMpState();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(*state, MpState::kHalted);
  EXPECT_EQ(static_cast<uint32_t>(name), 0x80000005u);
}

TEST_F(WhpMpStateTest, SetWritesTheActivityBits) {
  ASSERT_TRUE(ap_->mp_state()->SetMpState(MpState::kRunnable).has_value());
  EXPECT_EQ(Activity(), 0u);
  ASSERT_TRUE(ap_->mp_state()->SetMpState(MpState::kHalted).has_value());
  EXPECT_EQ(Activity(), 2u);
  ASSERT_TRUE(ap_->mp_state()->SetMpState(MpState::kUninitialized).has_value());
  EXPECT_EQ(Activity(), 1u);
  auto back = ap_->mp_state()->GetMpState();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, MpState::kUninitialized);
}

TEST_F(WhpMpStateTest, StatesWhpCannotHoldAreRefusedBeforeAnyCall) {
  fake_.ClearLog();
  for (MpState state : {MpState::kInitReceived, MpState::kSipiReceived}) {
    auto s = ap_->mp_state()->SetMpState(state);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(s.error().detail.find(ToString(state)), std::string::npos) << s.error().detail;
  }
  EXPECT_TRUE(fake_.log().empty());
  EXPECT_EQ(Activity(), 1u);
}

TEST_F(WhpMpStateTest, AnIdleOrUnknownActivityIsUnavailableNamingIt) {
  fake_.set_reg(1, WHvRegisterInternalActivityState, 4);
  auto idle = ap_->mp_state()->GetMpState();
  ASSERT_FALSE(idle.has_value());
  EXPECT_EQ(idle.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(idle.error().detail.find("0x4"), std::string::npos) << idle.error().detail;
  fake_.set_reg(1, WHvRegisterInternalActivityState, 0x10);
  EXPECT_FALSE(ap_->mp_state()->GetMpState().has_value());
}

TEST_F(WhpMpStateTest, FailuresAreReportedAndChangeNothing) {
  fake_.FailNext("GetVirtualProcessorRegisters", kHrInvalidArg);
  auto got = ap_->mp_state()->GetMpState();
  ASSERT_FALSE(got.has_value());
  EXPECT_STREQ(got.error().operation, "WHvGetVirtualProcessorRegisters");
  fake_.FailNext("SetVirtualProcessorRegisters", kHrInvalidArg);
  auto set = ap_->mp_state()->SetMpState(MpState::kRunnable);
  ASSERT_FALSE(set.has_value());
  EXPECT_STREQ(set.error().operation, "WHvSetVirtualProcessorRegisters");
  EXPECT_EQ(Activity(), 1u);
}

TEST_F(WhpMpStateTest, TheBootProcessorIsRunnable) {
  auto bsp = partition_->CreateVcpu(0);
  ASSERT_TRUE(bsp.has_value());
  auto state = (*bsp)->mp_state()->GetMpState();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(*state, MpState::kRunnable);
}

}  // namespace
}  // namespace virt::whp
