// Checks SMP bring-up on WHP's emulated LAPIC: APs are parked in StartupSuspend when created,
// their Run stays in the hypervisor until the boot processor's INIT/SIPI, which trap on vCPU 0
// and are re-issued inside its Run with exact WHvRequestInterrupt payloads; the AP then runs
// from the SIPI vector. Also: an AP's Run honours Cancel, odd traps and failures are reported.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"

namespace virt::whp {
namespace {

using namespace std::chrono_literals;
using test::FakeWhp;
using testing::_;

WHV_RUN_VP_EXIT_CONTEXT IcrTrap(uint64_t icr) {
  WHV_RUN_VP_EXIT_CONTEXT exit{};
  exit.ExitReason = WHvRunVpExitReasonX64ApicInitSipiTrap;
  exit.VpContext.Rip = 0x4000;  // past the ICR write
  exit.ApicInitSipi.ApicIcr = icr;
  return exit;
}

// OUT to `port` from real mode at `cs_selector`:`ip`.
WHV_RUN_VP_EXIT_CONTEXT Out(uint16_t port, uint8_t value, uint16_t cs_selector = 0,
                            uint64_t ip = 0x4000) {
  WHV_RUN_VP_EXIT_CONTEXT exit{};
  exit.ExitReason = WHvRunVpExitReasonX64IoPortAccess;
  exit.VpContext.Rip = ip;
  exit.VpContext.InstructionLength = 2;
  exit.VpContext.Cs.Selector = cs_selector;
  exit.IoPortAccess.PortNumber = port;
  exit.IoPortAccess.AccessInfo.AccessSize = 1;
  exit.IoPortAccess.AccessInfo.IsWrite = 1;
  exit.IoPortAccess.Rax = value;
  return exit;
}

WHV_INTERRUPT_CONTROL Ipi(uint32_t type, uint32_t dest, uint32_t vector) {
  WHV_INTERRUPT_CONTROL c{};
  c.Type = type;
  c.Destination = dest;
  c.Vector = vector;
  return c;
}

// The vCPU's MP state, or a test failure.
MpState StateOf(Vcpu& vcpu) {
  auto state = vcpu.mp_state()->GetMpState();
  EXPECT_TRUE(state.has_value()) << (state ? "" : state.error().Message());
  return state.value_or(MpState::kSipiReceived);
}

class WhpSmpTest : public testing::Test {
 protected:
  void Open(uint32_t vcpus, bool irqchip = true) {
    auto h = WhpHypervisor::Create(fake_.api());
    ASSERT_TRUE(h.has_value()) << h.error().Message();
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = vcpus, .irqchip = irqchip});
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
  }
  std::unique_ptr<Vcpu> MustCreate(uint32_t index) {
    auto v = partition_->CreateVcpu(index);
    EXPECT_TRUE(v.has_value()) << (v ? "" : v.error().Message());
    return v ? std::move(*v) : nullptr;
  }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
};

TEST_F(WhpSmpTest, OnlyApplicationProcessorsAreParkedAtCreation) {
  Open(2);
  EXPECT_CALL(fake_.mock(), SetVirtualProcessorRegisters(_, 0, _, _, _)).Times(0);
  auto bsp = MustCreate(0);
  testing::Mock::VerifyAndClearExpectations(&fake_.mock());
  WHV_REGISTER_NAME name{};
  uint32_t count = 0;
  uint64_t value = ~uint64_t{0};
  EXPECT_CALL(fake_.mock(), SetVirtualProcessorRegisters(_, 1, _, _, _))
      .WillOnce([&](WHV_PARTITION_HANDLE, uint32_t, const WHV_REGISTER_NAME* names, uint32_t n,
                    const WHV_REGISTER_VALUE* values) {
        name = names[0];
        count = n;
        value = values[0].Reg64;
        return Ok();
      });
  auto ap = MustCreate(1);
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(static_cast<uint32_t>(name), 0x80000005u);  // WHvRegisterInternalActivityState
  EXPECT_EQ(value, 1u);                                  // StartupSuspend
}

TEST_F(WhpSmpTest, WithoutIrqchipNoVcpuIsParked) {
  Open(2, /*irqchip=*/false);
  EXPECT_CALL(fake_.mock(), SetVirtualProcessorRegisters(_, _, _, _, _)).Times(0);
  auto bsp = MustCreate(0);
  auto ap = MustCreate(1);
  EXPECT_EQ(ap->mp_state(), nullptr);
  EXPECT_EQ(fake_.reg(1, WHvRegisterInternalActivityState).Reg64, 0u);
}

// vCPU 0 runs the boot state; every AP thread only calls Run.
TEST_F(WhpSmpTest, InitSipiFromTheBootProcessorStartsEveryApAtTheVector) {
  constexpr uint32_t kVcpus = 4;
  Open(kVcpus);
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  for (uint32_t i = 0; i < kVcpus; ++i) vcpus.push_back(MustCreate(i));
  for (uint32_t i = 1; i < kVcpus; ++i) {
    EXPECT_EQ(StateOf(*vcpus[i]), MpState::kUninitialized);
    // What the AP does first once started: OUT 0xe0 from the trampoline at 1000:0000.
    fake_.QueueExit(i, Out(0xe0, static_cast<uint8_t>(i), 0x1000, 0));
  }

  std::array<Result<VcpuExit>, kVcpus> results{Error::Make(ErrorCode::kNative, "not run"),
                                               Error::Make(ErrorCode::kNative, "not run"),
                                               Error::Make(ErrorCode::kNative, "not run"),
                                               Error::Make(ErrorCode::kNative, "not run")};
  std::atomic<int> returned{0};
  std::vector<std::thread> aps;
  for (uint32_t i = 1; i < kVcpus; ++i) {
    aps.emplace_back([&, i] {
      results[i] = vcpus[i]->Run();
      returned.fetch_add(1);
    });
  }
  ASSERT_TRUE(fake_.WaitUntilSuspendedInRun(kVcpus - 1, 10s));
  EXPECT_EQ(returned.load(), 0) << "an AP returned before its SIPI";

  fake_.QueueExit(0, IcrTrap(0x000C4500));  // INIT, all excluding self
  fake_.QueueExit(0, IcrTrap(0x000C4610));  // SIPI vector 0x10, all excluding self
  fake_.QueueExit(0, Out(0xf4, 0));
  auto bsp_exit = vcpus[0]->Run();
  for (auto& t : aps) t.join();

  ASSERT_TRUE(bsp_exit.has_value()) << bsp_exit.error().Message();
  const auto* io = std::get_if<IoExit>(&*bsp_exit);
  ASSERT_NE(io, nullptr) << "the traps must not reach the VMM: " << ExitName(*bsp_exit);
  EXPECT_EQ(io->port, 0xf4);

  const auto requested = fake_.requested();
  const std::vector<WHV_INTERRUPT_CONTROL> want = {
      Ipi(WHvX64InterruptTypeInit, 1, 0),    Ipi(WHvX64InterruptTypeInit, 2, 0),
      Ipi(WHvX64InterruptTypeInit, 3, 0),    Ipi(WHvX64InterruptTypeSipi, 1, 0x10),
      Ipi(WHvX64InterruptTypeSipi, 2, 0x10), Ipi(WHvX64InterruptTypeSipi, 3, 0x10)};
  ASSERT_EQ(requested.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(test::SameControl(requested[i], want[i]))
        << i << ": type " << requested[i].Type << " dest " << requested[i].Destination
        << " vector " << requested[i].Vector;
  }

  for (uint32_t i = 1; i < kVcpus; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(results[i].has_value()) << results[i].error().Message();
    const auto* ap_io = std::get_if<IoExit>(&*results[i]);
    ASSERT_NE(ap_io, nullptr) << ExitName(*results[i]);
    EXPECT_EQ(ap_io->port, 0xe0);
    EXPECT_EQ(ap_io->value(), i);
    const auto cs = fake_.reg(i, WHvX64RegisterCs).Segment;  // as WHP's SIPI left it
    EXPECT_EQ(cs.Selector, 0x1000);
    EXPECT_EQ(cs.Base, 0x10000u);
    EXPECT_EQ(fake_.reg(i, WHvX64RegisterRip).Reg64, 2u);  // IP 0 + the OUT
    EXPECT_EQ(StateOf(*vcpus[i]), MpState::kRunnable);
  }
}

TEST_F(WhpSmpTest, AnApWaitingForSipiHonoursCancel) {
  Open(2);
  auto bsp = MustCreate(0);
  auto ap = MustCreate(1);
  Result<VcpuExit> result = Error::Make(ErrorCode::kNative, "not run");
  std::thread runner([&] { result = ap->Run(); });
  ASSERT_TRUE(fake_.WaitUntilSuspendedInRun(1, 10s));
  ap->Cancel();
  runner.join();
  ASSERT_TRUE(result.has_value()) << result.error().Message();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(*result));
  EXPECT_EQ(StateOf(*ap), MpState::kUninitialized);  // still waiting
}

TEST_F(WhpSmpTest, AnIpiToOneApicIdGoesToThatVpOnly) {
  Open(3);
  auto bsp = MustCreate(0);
  auto ap1 = MustCreate(1);
  auto ap2 = MustCreate(2);
  fake_.QueueExit(0, IcrTrap((uint64_t{2} << 56) | 0x4500));
  fake_.QueueExit(0, IcrTrap((uint64_t{2} << 56) | 0x4608));
  ASSERT_TRUE(bsp->Run().has_value());
  const auto requested = fake_.requested();
  ASSERT_EQ(requested.size(), 2u);
  EXPECT_TRUE(test::SameControl(requested[0], Ipi(WHvX64InterruptTypeInit, 2, 0)));
  EXPECT_TRUE(test::SameControl(requested[1], Ipi(WHvX64InterruptTypeSipi, 2, 8)));
  EXPECT_EQ(StateOf(*ap1), MpState::kUninitialized);
  EXPECT_EQ(StateOf(*ap2), MpState::kRunnable);
  EXPECT_EQ(fake_.reg(2, WHvX64RegisterCs).Segment.Selector, 0x0800);
}

TEST_F(WhpSmpTest, ATrapThatIsNeitherInitNorSipiIsAnInternalError) {
  Open(2);
  auto bsp = MustCreate(0);
  fake_.QueueExit(0, IcrTrap(0x000C4030));  // a fixed IPI: the trap never reports one
  auto exit = bsp->Run();
  ASSERT_TRUE(exit.has_value());
  const auto* ie = std::get_if<InternalErrorExit>(&*exit);
  ASSERT_NE(ie, nullptr) << ExitName(*exit);
  EXPECT_EQ(ie->suberror, 0x1006u);
  EXPECT_EQ(ie->ndata, 1u);
  EXPECT_EQ(ie->data[0], 0x000C4030u);
  EXPECT_TRUE(fake_.requested().empty());
}

TEST_F(WhpSmpTest, AFailedIpiIsReportedAndTheBootProcessorRunsOn) {
  Open(2);
  auto bsp = MustCreate(0);
  auto ap = MustCreate(1);
  fake_.QueueExit(0, IcrTrap(0x000C4500));
  fake_.FailNext("RequestInterrupt", kHrInvalidArg);
  auto failed = bsp->Run();
  ASSERT_FALSE(failed.has_value());
  EXPECT_STREQ(failed.error().operation, "WHvRequestInterrupt");
  EXPECT_EQ(StateOf(*ap), MpState::kUninitialized);
  auto next = bsp->Run();  // nothing scripted: the fake's HLT
  ASSERT_TRUE(next.has_value());
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*next));
}

TEST_F(WhpSmpTest, ARunThatEndsWithoutAReasonRunsAgain) {
  Open(1);
  auto bsp = MustCreate(0);
  WHV_RUN_VP_EXIT_CONTEXT none{};
  none.ExitReason = WHvRunVpExitReasonNone;
  fake_.QueueExit(0, none);
  fake_.QueueExit(0, Out(0xf4, 1));
  fake_.ClearLog();
  auto exit = bsp->Run();
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(std::holds_alternative<IoExit>(*exit)) << ExitName(*exit);
  EXPECT_EQ(fake_.CountCalls("RunVirtualProcessor"), 2);
}

}  // namespace
}  // namespace virt::whp
