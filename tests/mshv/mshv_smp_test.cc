// MSHV SMP bring-up and MP state: APs wait in StartupSuspend inside MSHV_RUN_VP until the
// hypervisor's LAPIC takes the BSP's INIT/SIPI, then run from the SIPI vector; the MP state maps
// to HV_REGISTER_INTERNAL_ACTIVITY_STATE with exact hypercall payloads.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>

#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kActivity = HV_REGISTER_INTERNAL_ACTIVITY_STATE;

class MshvSmpTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{4, true});
    for (uint32_t i = 0; i < 4; ++i) {
      auto v = partition_->CreateVcpu(i);
      ASSERT_TRUE(v.has_value());
      vcpus_.push_back(std::move(*v));
    }
    fake_.hvcalls().clear();
  }
  void TearDown() override {
    vcpus_.clear();
    partition_.reset();
    MshvTest::TearDown();
  }
  int VpFd(uint32_t index) {
    for (auto& [fd, vp] : fake_.vps()) {
      if (vp.index == index) return fd;
    }
    return -1;
  }
  // The first instruction of a real-mode trampoline at CS:IP = (vector << 8):ip: OUT to `port`.
  static mshv_run_vp TrampolineOut(uint8_t vector, uint64_t ip, uint16_t port, uint8_t al) {
    InterceptHeader h;
    h.access_type = 1;
    h.instruction_length = 2;  // out imm8, al
    h.execution_state = 0;     // CR0.PE clear: real mode
    h.cs_attributes = 0x9B;
    h.rip = ip;
    mshv_run_vp m = IoPortMessage(h, port, 1, al);
    PutLe(m.msg_buf + 16, 8, uint64_t{vector} << 12, 8);     // CS base
    PutLe(m.msg_buf + 16, 8 + 12, uint64_t{vector} << 8, 2);  // CS selector
    return m;
  }
  static bool Ready(std::future<Result<VcpuExit>>& f) {
    return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  }
  std::vector<HvcallRecord> CallsOn(int fd) {
    std::vector<HvcallRecord> out;
    for (const HvcallRecord& r : fake_.hvcalls()) {
      if (r.fd == fd) out.push_back(r);
    }
    return out;
  }

  std::vector<std::unique_ptr<Vcpu>> vcpus_;
};

TEST_F(MshvSmpTest, TheBspIsRunnableAndApsWaitForStartup) {
  auto bsp = vcpus_[0]->mp_state()->GetMpState();
  ASSERT_TRUE(bsp.has_value()) << bsp.error().Message();
  EXPECT_EQ(*bsp, MpState::kRunnable);
  for (uint32_t i = 1; i < 4; ++i) {
    auto ap = vcpus_[i]->mp_state()->GetMpState();
    ASSERT_TRUE(ap.has_value());
    EXPECT_EQ(*ap, MpState::kUninitialized) << i;
  }
  // One HVCALL_GET_VP_REGISTERS {HV_REGISTER_INTERNAL_ACTIVITY_STATE} on each vp fd.
  ASSERT_EQ(fake_.hvcalls().size(), 4u);
  const HvcallRecord& rec = fake_.hvcalls()[1];
  EXPECT_EQ(rec.fd, VpFd(1));
  EXPECT_EQ(rec.call.code, 0x0050);
  EXPECT_EQ(rec.call.reps, 1);
  EXPECT_EQ(rec.call.in_sz, 20);
  EXPECT_EQ(rec.call.out_sz, 16);
  std::vector<uint8_t> want(20, 0);
  PutLe(want.data(), 8, 1, 4);   // vp_index
  PutLe(want.data(), 16, 4, 4);  // HV_REGISTER_INTERNAL_ACTIVITY_STATE
  EXPECT_EQ(rec.input, want);
}

TEST_F(MshvSmpTest, SetMpStateWritesTheActivityRegister) {
  const std::pair<MpState, uint64_t> cases[] = {
      {MpState::kHalted, 2}, {MpState::kUninitialized, 1}, {MpState::kRunnable, 0}};
  for (auto [state, raw] : cases) {
    fake_.hvcalls().clear();
    ASSERT_TRUE(vcpus_[2]->mp_state()->SetMpState(state)) << ToString(state);
    ASSERT_EQ(fake_.hvcalls().size(), 1u);
    EXPECT_EQ(fake_.hvcalls()[0].call.code, 0x0051);
    EXPECT_EQ(fake_.hvcalls()[0].input, SetRegistersInput(2, {{kActivity, raw}}));
    auto back = vcpus_[2]->mp_state()->GetMpState();
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, state);
  }
}

TEST_F(MshvSmpTest, StatesMshvCannotRepresentAreUnavailable) {
  for (MpState state : {MpState::kInitReceived, MpState::kSipiReceived}) {
    auto s = vcpus_[1]->mp_state()->SetMpState(state);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
    EXPECT_THAT(s.error().detail, HasSubstr(ToString(state)));
  }
  EXPECT_TRUE(fake_.hvcalls().empty());
  EXPECT_EQ(fake_.vp(1).registers[kActivity].low, 1u);  // still waiting for startup
}

TEST_F(MshvSmpTest, RawActivityValuesMapOrAreNamed) {
  const std::pair<uint64_t, MpState> mapped[] = {
      {0x4, MpState::kRunnable}, {0x6, MpState::kHalted}, {0x5, MpState::kUninitialized}};
  for (auto [raw, state] : mapped) {
    fake_.vp(3).registers[kActivity] = {raw, 0};
    auto got = vcpus_[3]->mp_state()->GetMpState();
    ASSERT_TRUE(got.has_value()) << raw;
    EXPECT_EQ(*got, state) << raw;
  }
  for (uint64_t raw : {0x3ull, 0x8ull, 0x8000000000000000ull}) {
    fake_.vp(3).registers[kActivity] = {raw, 0};
    auto got = vcpus_[3]->mp_state()->GetMpState();
    ASSERT_FALSE(got.has_value()) << raw;
    EXPECT_EQ(got.error().code, ErrorCode::kUnavailable);
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(raw));
    EXPECT_THAT(got.error().detail, HasSubstr(hex));
  }
}

TEST_F(MshvSmpTest, AnApRunsFromTheSipiVectorAfterTheBspStartsIt) {
  // vCPU 0's guest writes its ICR (INIT, then SIPI vector 0x08): the hypervisor's LAPIC handles
  // both, and the guest then reports on port 0xE9. Nothing of INIT/SIPI reaches the VMM.
  fake_.vp(0).messages = {TrampolineOut(0, 0x7C00, 0xE9, 'S')};
  fake_.vp(1).messages = {TrampolineOut(0x08, 0x0, 0xE9, 'A')};
  auto ap = std::async(std::launch::async, [&] { return vcpus_[1]->Run(); });
  fake_.WaitForSleepingRun(1);
  EXPECT_FALSE(Ready(ap));  // blocked in MSHV_RUN_VP: no exit for the wait itself

  auto bsp = vcpus_[0]->Run();
  ASSERT_TRUE(bsp.has_value());
  EXPECT_EQ(std::get<IoExit>(*bsp).value(), uint32_t{'S'});
  EXPECT_FALSE(Ready(ap));
  ASSERT_TRUE(fake_.StartupIpi(1, 0x08));  // what the hypervisor does on the SIPI

  auto exit = ap.get();
  ASSERT_TRUE(exit.has_value()) << exit.error().Message();
  const IoExit& io = std::get<IoExit>(*exit);
  EXPECT_EQ(io.port, 0xE9);
  EXPECT_EQ(io.value(), uint32_t{'A'});
  EXPECT_EQ(fake_.vp(1).sleeping_runs, 1);
  EXPECT_EQ(fake_.calls("RunVp"), 2);  // one per vCPU: the wait was no exit
  // The VMM wrote no AP register to start it; its only hypercall advanced RIP past the OUT.
  const std::vector<HvcallRecord> ap_calls = CallsOn(VpFd(1));
  ASSERT_EQ(ap_calls.size(), 1u);
  EXPECT_EQ(ap_calls[0].input, SetRegistersInput(1, {{HV_X64_REGISTER_RIP, 0x2}}));
  hv_x64_segment_register cs;
  std::memcpy(&cs, &fake_.vp(1).registers[HV_X64_REGISTER_CS], sizeof cs);
  EXPECT_EQ(cs.selector, 0x0800);
  EXPECT_EQ(cs.base, 0x8000u);
  auto state = vcpus_[1]->mp_state()->GetMpState();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(*state, MpState::kRunnable);
}

TEST_F(MshvSmpTest, FourVcpusEachOnItsOwnThread) {
  for (uint32_t i = 1; i < 4; ++i) {
    fake_.vp(i).messages = {TrampolineOut(0x10, 0, 0xE9, static_cast<uint8_t>('0' + i))};
  }
  std::vector<std::future<Result<VcpuExit>>> aps;
  for (uint32_t i = 1; i < 4; ++i) {
    aps.push_back(std::async(std::launch::async, [&, i] { return vcpus_[i]->Run(); }));
  }
  for (uint32_t i = 1; i < 4; ++i) fake_.WaitForSleepingRun(i);
  for (auto& ap : aps) EXPECT_FALSE(Ready(ap));
  for (uint32_t i = 1; i < 4; ++i) ASSERT_TRUE(fake_.StartupIpi(i, 0x10));
  for (uint32_t i = 1; i < 4; ++i) {
    auto exit = aps[i - 1].get();
    ASSERT_TRUE(exit.has_value()) << exit.error().Message();
    EXPECT_EQ(std::get<IoExit>(*exit).value(), '0' + i);
  }
  EXPECT_FALSE(fake_.StartupIpi(2, 0x10));  // a second SIPI to a running AP does nothing
}

TEST_F(MshvSmpTest, CancelEndsTheWaitAndTheApStillStartsLater) {
  fake_.vp(1).messages = {TrampolineOut(0x08, 0, 0xE9, 'A')};
  auto ap = std::async(std::launch::async, [&] { return vcpus_[1]->Run(); });
  fake_.WaitForSleepingRun(1);
  vcpus_[1]->Cancel();  // kicks the thread out of MSHV_RUN_VP (EINTR)
  auto cancelled = ap.get();
  ASSERT_TRUE(cancelled.has_value()) << cancelled.error().Message();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(*cancelled));
  auto state = vcpus_[1]->mp_state()->GetMpState();
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(*state, MpState::kUninitialized);

  auto again = std::async(std::launch::async, [&] { return vcpus_[1]->Run(); });
  fake_.WaitForSleepingRun(1, 2);
  ASSERT_TRUE(fake_.StartupIpi(1, 0x08));
  auto exit = again.get();
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(std::holds_alternative<IoExit>(*exit));
}

TEST_F(MshvSmpTest, TransientErrorsWhileWaitingAreRetried) {
  fake_.vp(1).messages = {TrampolineOut(0x08, 0, 0xE9, 'A')};
  fake_.FailNext("RunVp", 0, EAGAIN);
  auto ap = std::async(std::launch::async, [&] { return vcpus_[1]->Run(); });
  fake_.WaitForSleepingRun(1);
  ASSERT_TRUE(fake_.StartupIpi(1, 0x08));
  auto exit = ap.get();
  ASSERT_TRUE(exit.has_value()) << exit.error().Message();
  EXPECT_TRUE(std::holds_alternative<IoExit>(*exit));
  EXPECT_EQ(fake_.calls("RunVp"), 2);
}

TEST_F(MshvSmpTest, TheVmmCanStartAnApItselfOrParkIt) {
  // Start vCPU 2 without a SIPI: its registers, then kRunnable.
  Registers regs;
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  ASSERT_TRUE(vcpus_[2]->SetRegisters(regs));
  ASSERT_TRUE(vcpus_[2]->mp_state()->SetMpState(MpState::kRunnable));
  fake_.vp(2).messages = {PlainMessage(HVMSG_X64_HALT, 40)};
  auto halted = vcpus_[2]->Run();
  ASSERT_TRUE(halted.has_value());
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*halted));
  EXPECT_EQ(fake_.vp(2).sleeping_runs, 0);

  // Park vCPU 0: its next Run waits for a SIPI like an AP.
  ASSERT_TRUE(vcpus_[0]->mp_state()->SetMpState(MpState::kUninitialized));
  fake_.vp(0).messages = {TrampolineOut(0x09, 0, 0xE9, 'P')};
  auto parked = std::async(std::launch::async, [&] { return vcpus_[0]->Run(); });
  fake_.WaitForSleepingRun(0);
  EXPECT_FALSE(Ready(parked));
  ASSERT_TRUE(fake_.StartupIpi(0, 0x09));
  auto exit = parked.get();
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(std::get<IoExit>(*exit).value(), uint32_t{'P'});
}

}  // namespace
}  // namespace virt::mshv::test
