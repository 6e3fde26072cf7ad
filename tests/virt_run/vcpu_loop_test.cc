// RunVcpuLoop on scripted fake vCPUs: port and MMIO dispatch (string I/O, IN completion,
// unclaimed all-ones), and each exit that ends the run with its status and RIP.
#include "virt_run/vcpu_loop.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <thread>

#include "fake_backend.h"
#include "virt_run/platform.h"

namespace virt::run {
namespace {

using testing::FakeVcpu;
using testing::In;
using testing::Mmio;
using testing::Out;
using testing::Out32;
using testing::ScriptedExit;

class VcpuLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    console_file_ = std::tmpfile();
    ASSERT_NE(console_file_, nullptr);
    console_ = std::make_unique<Console>(console_file_);
    auto platform = Platform::Create({1, 64ull << 20, &lines_}, *console_, stop_);
    ASSERT_TRUE(platform) << platform.error().Message();
    platform_ = std::move(*platform);
  }
  void TearDown() override {
    platform_.reset();
    std::fclose(console_file_);
  }

  // Runs a vCPU with `script` to its end on this thread.
  std::unique_ptr<FakeVcpu> Run(std::vector<ScriptedExit> script, uint64_t rip = 0x401234) {
    auto vcpu = std::make_unique<FakeVcpu>(0, std::move(script));
    vcpu->regs_.rip = rip;
    stop_.SetOnStop([v = vcpu.get()] { v->Cancel(); });
    RunVcpuLoop(*vcpu, {platform_->ports(), platform_->mmio(), stop_, stats_});
    return vcpu;
  }

  std::string ConsoleText() {
    console_->Flush();
    std::rewind(console_file_);
    std::string s;
    for (int c; (c = std::fgetc(console_file_)) != EOF;) s += static_cast<char>(c);
    return s;
  }

  std::FILE* console_file_ = nullptr;
  std::unique_ptr<Console> console_;
  StopController stop_;
  ExitStats stats_;
  testing::FakeIrqLines lines_;
  std::unique_ptr<Platform> platform_;
};

TEST_F(VcpuLoopTest, StringOutToTheUartThenDebugExit) {
  auto vcpu = Run({Out(0x3f8, 1, {'h', 'e', 'l', 'l', 'o', '\r', '\n'}), Out32(0xf4, 0)});
  EXPECT_EQ(ConsoleText(), "hello\r\n");
  EXPECT_EQ(stop_.verdict().status, 1);
  EXPECT_EQ(stop_.verdict().debug_exit_code, 0u);
  EXPECT_FALSE(stop_.verdict().print);
  EXPECT_EQ(vcpu->runs_, 2);  // no Run after the verdict
  EXPECT_EQ(stats_.count(0), 2u);  // io
  EXPECT_GE(stats_.first_exit_ns(), 0);
}

TEST_F(VcpuLoopTest, DebugExitCodesMapToOddStatuses) {
  auto vcpu = Run({Out32(0xf4, 38)});
  EXPECT_EQ(stop_.verdict().status, 77);
}

TEST_F(VcpuLoopTest, InsAreCompletedBeforeTheNextRun) {
  auto vcpu = Run({Out32(0xe0, 0x44332211), In(0x3fd, 1), In(0xe0, 1, 3), In(0x1234, 4),
                   In(0x1234, 2, 2), Out32(0xf4, 0)});
  ASSERT_EQ(vcpu->in_answers_.size(), 4u);
  EXPECT_EQ(vcpu->in_answers_[0], (std::vector<uint8_t>{0x60}));              // LSR
  EXPECT_EQ(vcpu->in_answers_[1], (std::vector<uint8_t>{0x11, 0x11, 0x11}));  // rep insb
  EXPECT_EQ(vcpu->in_answers_[2], (std::vector<uint8_t>(4, 0xff)));            // unclaimed
  EXPECT_EQ(vcpu->in_answers_[3], (std::vector<uint8_t>(4, 0xff)));
  EXPECT_EQ(platform_->ports().counters().unclaimed_reads, 3u);  // one per element
}

TEST_F(VcpuLoopTest, MmioScratchAndUnclaimedMmio) {
  auto vcpu = Run({Mmio(0xff000010, 4, true, 0xcafef00d), Mmio(0xff000010, 4, false),
                   Mmio(0xff000012, 2, false), Mmio(0xd0000000, 8, false),
                   Mmio(0xd0000000, 4, true, 1), Out32(0xf4, 0)});
  EXPECT_EQ(vcpu->mmio_answers_,
            (std::vector<uint64_t>{0xcafef00d, 0xcafe, 0xffffffffffffffffull}));
  EXPECT_EQ(platform_->mmio().counters().unclaimed_reads, 1u);
  EXPECT_EQ(platform_->mmio().counters().unclaimed_writes, 1u);
}

TEST_F(VcpuLoopTest, IrqLinePortsReachIrqLines) {
  auto vcpu = Run({Out(0x2004, 1, {1}), Out(0x2004, 1, {0}), Out32(0xf4, 0)});
  EXPECT_EQ(lines_.levels, (std::vector<std::pair<uint32_t, bool>>{{4, true}, {4, false}}));
}

TEST_F(VcpuLoopTest, ShutdownIsStatus6WithTheRip) {
  Run({ScriptedExit{ShutdownExit{}, {}}}, 0x2000bd);
  EXPECT_EQ(stop_.verdict().status, 6);
  EXPECT_EQ(stop_.verdict().reason, "vCPU 0 shut down (triple fault) at RIP 0x2000bd");
  EXPECT_TRUE(stop_.verdict().print);
}

struct EndCase {
  const char* name;
  VcpuExit exit;
  const char* reason;
};

TEST_F(VcpuLoopTest, UnhandledExitsAreStatus8NamingTheExit) {
  InternalErrorExit internal;
  internal.suberror = 1;
  internal.ndata = 2;
  internal.data = {0x10, 0x20, 0, 0};
  UnsupportedInstructionExit unsupported;
  unsupported.address = 0xfee00300;
  unsupported.bytes = {0x0f, 0x01, 0xc1};
  unsupported.length = 3;
  unsupported.reason = "not a MOV form";
  const EndCase cases[] = {
      {"halt", HaltExit{}, "vCPU 0 halted (HLT, and no in-kernel irqchip will wake it) at RIP 0x77"},
      {"internal", internal,
       "vCPU 0: internal error exit (suberror 1, data 0x10 0x20) at RIP 0x77"},
      {"unknown", UnknownExit{99}, "vCPU 0: unknown exit (reason 99) at RIP 0x77"},
      {"unsupported", unsupported,
       "vCPU 0: unsupported instruction (not a MOV form) accessing 0xfee00300, bytes 0f 01 c1 at "
       "RIP 0x77"},
  };
  for (const EndCase& c : cases) {
    StopController stop;
    ExitStats stats;
    FakeVcpu vcpu(0, {ScriptedExit{c.exit, {}}});
    vcpu.regs_.rip = 0x77;
    RunVcpuLoop(vcpu, {platform_->ports(), platform_->mmio(), stop, stats});
    EXPECT_EQ(stop.verdict().status, 8) << c.name;
    EXPECT_EQ(stop.verdict().reason, c.reason) << c.name;
  }
}

TEST_F(VcpuLoopTest, RunFailureIsStatus8) {
  FakeVcpu vcpu(2, {});
  vcpu.run_error_ = Error::Errno("KVM_RUN", 14);
  RunVcpuLoop(vcpu, {platform_->ports(), platform_->mmio(), stop_, stats_});
  EXPECT_EQ(stop_.verdict().status, 8);
  EXPECT_EQ(stop_.verdict().reason.rfind("vCPU 2: Run failed: KVM_RUN: errno 14", 0), 0u)
      << stop_.verdict().reason;
}

TEST_F(VcpuLoopTest, DeviceErrorIsStatus8NamingThePort) {
  lines_.fail_set_level = true;
  Run({Out(0x2001, 1, {1})});
  EXPECT_EQ(stop_.verdict().status, 8);
  EXPECT_EQ(stop_.verdict().reason.rfind("vCPU 0: port 0x2001 write: KVM_IRQ_LINE: errno 5", 0), 0u)
      << stop_.verdict().reason;
}

TEST_F(VcpuLoopTest, ABlockedVcpuEndsWhenAnotherThreadStopsTheRun) {
  FakeVcpu vcpu(1, {});  // like an AP that never gets its SIPI
  stop_.SetOnStop([&vcpu] { vcpu.Cancel(); });
  std::thread t([&] { RunVcpuLoop(vcpu, {platform_->ports(), platform_->mmio(), stop_, stats_}); });
  stop_.Stop(Verdict(124, "timeout"));
  t.join();
  EXPECT_EQ(stop_.verdict().status, 124);
  EXPECT_LE(vcpu.cancelled_, 1);
}

TEST_F(VcpuLoopTest, ASpuriousCancelRunsOn) {
  FakeVcpu vcpu(0, {Out32(0xf4, 1)});
  vcpu.Cancel();  // before any verdict: Run returns CancelledExit, the loop goes on
  RunVcpuLoop(vcpu, {platform_->ports(), platform_->mmio(), stop_, stats_});
  EXPECT_EQ(vcpu.cancelled_, 1);
  EXPECT_EQ(stop_.verdict().status, 3);
}

}  // namespace
}  // namespace virt::run
