// virt-run on the real /dev/kvm with tests/virt_run/smoke_kernel.S: the console, every exit
// status, string I/O, the module, fw_cfg, unclaimed accesses, and APs that never get a SIPI
// being cancelled cleanly. Skips (with the reason) when this host has no usable /dev/kvm.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "run_binary.h"
#include "temp_file.h"
#include "virt/kvm/kvm_hypervisor.h"

namespace virt::run {
namespace {

using testing::RunBinary;
using testing::RunResult;

constexpr const char* kHello = "virt-run smoke kernel: entry state ok\n";

class VirtRunKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Availability a = kvm::KvmHypervisor::Probe(kvm::MakeSystemKvmIoctl());
    if (a.why == Unavailability::kDeviceMissing || a.why == Unavailability::kPermissionDenied) {
      GTEST_SKIP() << "virt-run on real KVM needs a usable " << kvm::kDefaultDevice << ": "
                   << ToString(a.why) << " (" << a.reason << ")";
    }
    ASSERT_TRUE(a.available()) << kvm::kDefaultDevice << " is present but unusable: " << a.reason;
  }

  static RunResult Run(std::vector<std::string> args) {
    std::vector<std::string> all = {"--backend", "kvm", "--timeout", "30"};
    all.insert(all.end(), args.begin(), args.end());
    all.push_back(VIRT_RUN_SMOKE_KERNEL);
    return RunBinary(VIRT_RUN_BINARY, all);
  }
};

TEST_F(VirtRunKvmTest, PassPrintsTheConsoleAndExits1) {
  const RunResult r = Run({"--append", "p"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, std::string(kHello) + "pass\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(VirtRunKvmTest, FailExits3) {
  const RunResult r = Run({"--append", "f"});
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_EQ(r.out, kHello);
}

TEST_F(VirtRunKvmTest, TripleFaultExits6NamingTheVcpuAndRip) {
  const RunResult r = Run({"--append", "t"});
  EXPECT_EQ(r.status, 6);
  EXPECT_EQ(r.err.rfind("virt-run: vCPU 0 shut down (triple fault) at RIP 0x2", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST_F(VirtRunKvmTest, HangExits124AfterTheTimeout) {
  std::vector<std::string> args = {"--backend", "kvm", "--timeout", "1", "--smp", "2",
                                   "--append", "h", VIRT_RUN_SMOKE_KERNEL};
  const RunResult r = RunBinary(VIRT_RUN_BINARY, args);
  EXPECT_EQ(r.status, 124);
  EXPECT_EQ(r.err, "virt-run: timeout: the guest still ran after 1 s (--timeout)\n");
}

TEST_F(VirtRunKvmTest, ModuleArrivesWholeThroughOneStringOut) {
  const std::string text = "TESTNAME=smoke\nHOST=kvm\n";
  const std::string env = testing::WriteTempFile("env", {text.begin(), text.end()});
  const RunResult r = Run({"--initrd", env, "--append", "m", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out.rfind(std::string(kHello) + "TESTNAME=smoke\nHOST=kvm\npass\n{", 0), 0u) << r.out;
}

TEST_F(VirtRunKvmTest, FwCfgTellsTheCpuCountAndRamSize) {
  const RunResult r = Run({"--smp", "4", "-m", "256", "--append", "c"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, std::string(kHello) + "cpus 4 ram_mib 256\npass\n");
}

TEST_F(VirtRunKvmTest, UnclaimedAccessesReadAllOnesAndAreCounted) {
  const RunResult r = Run({"--append", "u", "--json"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find("unclaimed reads all-ones\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"unclaimed\":{\"io_read\":2,\"io_write\":1,\"mmio_read\":1,"
                       "\"mmio_write\":1}"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"backend\":\"kvm\""), std::string::npos);
}

TEST_F(VirtRunKvmTest, MmioScratchAndLatch) {
  const RunResult r = Run({"--append", "s"});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_EQ(r.out, std::string(kHello) + "scratch and latch ok\npass\n");
}

TEST_F(VirtRunKvmTest, ApsWaitingForSipiAreCancelledEveryTime) {
  // The kernel never starts its APs: each AP thread sits in KVM_RUN waiting for INIT/SIPI, and
  // the debug exit must still end the process (Vcpu::Cancel ends those Runs) every time.
  for (int i = 0; i < 20; ++i) {
    const RunResult r = Run({"--smp", "8", "--append", "p"});
    ASSERT_EQ(r.status, 1) << "run " << i << ": " << r.err;
    ASSERT_EQ(r.out, std::string(kHello) + "pass\n") << "run " << i;
  }
}

TEST_F(VirtRunKvmTest, CpuFlagsNeedVcpuCpuid) {
  auto hv = kvm::KvmHypervisor::Create(kvm::MakeSystemKvmIoctl());
  ASSERT_TRUE(hv) << hv.error().Message();
  auto partition = (*hv)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(partition) << partition.error().Message();
  auto vcpu = (*partition)->CreateVcpu(0);
  ASSERT_TRUE(vcpu) << vcpu.error().Message();
  const bool has_cpuid = (*vcpu)->cpuid() != nullptr;

  const RunResult r = Run({"--cpu", "-x2apic,+tsc-deadline", "--append", "p"});
  if (has_cpuid) {
    EXPECT_EQ(r.status, 1) << r.err;
  } else {
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.err, "virt-run: --cpu: the kvm backend cannot set a vCPU's CPUID (no Vcpu::cpuid())\n");
  }
}

}  // namespace
}  // namespace virt::run
