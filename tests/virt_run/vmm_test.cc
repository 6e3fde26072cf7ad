// RunVmm and Main over a fake backend: the statuses of the contract for backend, partition and
// CPUID failures, a whole run to the debug exit with APs left waiting, and the JSON report.
#include "virt_run/vmm.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "elf_builder.h"
#include "fake_backend.h"
#include "temp_file.h"

namespace virt::run {
namespace {

using testing::ElfBuilder;
using testing::FakeCpuidVcpu;
using testing::FakeHypervisor;
using testing::FakeVcpu;
using testing::Out;
using testing::Out32;

const std::vector<uint8_t> kCode = {0xe6, 0xf4, 0xf4, 0xf4};

class VmmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = std::tmpfile();
    ASSERT_NE(out_, nullptr);
    options_.kernel = testing::WriteTempFile("kernel", ElfBuilder::Typical(kCode, 0x10000).Build());
    options_.timeout_s = 30;
  }
  void TearDown() override { std::fclose(out_); }

  Verdict Run(FakeHypervisor* hv) { return RunVmm(options_, testing::FakeRegistry(hv), out_, report_); }

  std::string Output() {
    std::fflush(out_);
    std::rewind(out_);
    std::string s;
    for (int c; (c = std::fgetc(out_)) != EOF;) s += static_cast<char>(c);
    return s;
  }

  Options options_;
  RunReport report_;
  std::FILE* out_ = nullptr;
};

TEST_F(VmmTest, WholeRunBootsVcpu0AndCancelsWaitingAps) {
  FakeHypervisor hv;
  std::vector<FakeVcpu*> vcpus;
  std::vector<uint8_t> seen_code;
  hv.make_vcpu = [&](uint32_t i) -> std::unique_ptr<Vcpu> {
    if (i == 0) {
      // Memory is mapped and loaded before the vCPUs exist.
      const MemoryRegion& low = hv.last_partition->regions.at(0);
      const auto* ram = static_cast<const uint8_t*>(low.host_address);
      seen_code.assign(ram + 0x400000, ram + 0x400000 + kCode.size());
    }
    auto v = std::make_unique<FakeVcpu>(
        i, i == 0 ? std::vector{Out(0x3f8, 1, {'o', 'k', '\n'}), Out32(0xf4, 0)}
                  : std::vector<testing::ScriptedExit>{});
    vcpus.push_back(v.get());
    return v;
  };
  options_.smp = 4;
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 1) << v.reason;
  EXPECT_EQ(v.debug_exit_code, 0u);
  EXPECT_EQ(Output(), "ok\n");
  EXPECT_EQ(seen_code, kCode);

  ASSERT_EQ(hv.configs.size(), 1u);
  EXPECT_EQ(hv.configs[0].vcpu_count, 4u);
  EXPECT_TRUE(hv.configs[0].irqchip);
  EXPECT_TRUE(hv.configs[0].pit);
  EXPECT_EQ(report_.backend, "fake");
  EXPECT_TRUE(report_.pit);
  EXPECT_EQ(report_.exits[0], 2u);
  EXPECT_EQ(report_.console_bytes, 3u);
}

TEST_F(VmmTest, Vcpu0GetsTheMultibootStateAndApsAreLeftAlone) {
  FakeHypervisor hv;
  Registers bsp;
  FakeVcpu* ap = nullptr;
  bool ap_regs_set = true;
  hv.make_vcpu = [&](uint32_t i) -> std::unique_ptr<Vcpu> {
    struct Watching : FakeVcpu {
      using FakeVcpu::FakeVcpu;
      Registers* out = nullptr;
      bool* ap_flag = nullptr;
      ~Watching() override {
        if (out) *out = regs_;
        if (ap_flag) *ap_flag = regs_set_ || sregs_set_;
      }
    };
    auto v = std::make_unique<Watching>(i, i == 0 ? std::vector{Out32(0xf4, 0)}
                                                  : std::vector<testing::ScriptedExit>{});
    if (i == 0) v->out = &bsp;
    if (i == 1) {
      v->ap_flag = &ap_regs_set;
      ap = v.get();
    }
    return v;
  };
  options_.smp = 2;
  ASSERT_EQ(Run(&hv).status, 1);
  EXPECT_NE(ap, nullptr);
  EXPECT_FALSE(ap_regs_set);
  EXPECT_EQ(bsp.rax, 0x2BADB002u);
  EXPECT_EQ(bsp.rip, 0x400000u);
  EXPECT_EQ(bsp.rbx, 0x8000000u - 0x1000);  // the info page at the top of 128 MiB
}

TEST_F(VmmTest, NoUsableBackendIsStatus4WithTheReasons) {
  const Verdict v = Run(nullptr);
  EXPECT_EQ(v.status, 4);
  EXPECT_NE(v.reason.find("no usable backend"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("/dev/fake: gone"), std::string::npos) << v.reason;
}

TEST_F(VmmTest, SmpBeyondTheHypervisorsMaximumIsStatus2) {
  FakeHypervisor hv;
  hv.max_vcpus = 8;
  options_.smp = 9;
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 2);
  EXPECT_NE(v.reason.find("--smp 9: "), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("not in 1..8"), std::string::npos) << v.reason;
}

TEST_F(VmmTest, NoPitFallsBackAndSaysSoInTheReport) {
  FakeHypervisor hv;
  hv.has_pit = false;
  hv.make_vcpu = [](uint32_t i) { return std::make_unique<FakeVcpu>(i, std::vector{Out32(0xf4, 0)}); };
  ASSERT_EQ(Run(&hv).status, 1);
  ASSERT_EQ(hv.configs.size(), 2u);
  EXPECT_TRUE(hv.configs[0].pit);
  EXPECT_FALSE(hv.configs[1].pit);
  EXPECT_TRUE(hv.configs[1].irqchip);
  EXPECT_FALSE(report_.pit);
  ASSERT_TRUE(report_.pit_note);
  EXPECT_NE(report_.pit_note->find("no in-kernel PIT"), std::string::npos);
}

TEST_F(VmmTest, CpuFlagsWithoutVcpuCpuidAreStatus2) {
  FakeHypervisor hv;
  hv.make_vcpu = [](uint32_t i) { return std::make_unique<FakeVcpu>(i, std::vector<testing::ScriptedExit>{}); };
  options_.cpu = {{cpuid_feature::kX2Apic, false}};
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 2);
  EXPECT_EQ(v.reason, "--cpu: the fake backend cannot set a vCPU's CPUID (no Vcpu::cpuid())");
}

Cpuid TableWithLeaf1() {
  const CpuidEntry leaf1{1, 0, 0, 0, 0, 1u << 21, 0};
  return Cpuid(std::span(&leaf1, 1));
}

TEST_F(VmmTest, CpuFlagsAreAppliedOnEveryVcpuBeforeItRuns) {
  FakeHypervisor hv;
  std::vector<Cpuid> tables(2);
  std::vector<int> sets(2);
  hv.make_vcpu = [&](uint32_t i) -> std::unique_ptr<Vcpu> {
    struct Recording : FakeCpuidVcpu {
      using FakeCpuidVcpu::FakeCpuidVcpu;
      Cpuid* out = nullptr;
      int* sets_out = nullptr;
      ~Recording() override {
        *out = table_;
        *sets_out = sets_;
      }
    };
    auto v = std::make_unique<Recording>(i, i == 0 ? std::vector{Out32(0xf4, 0)}
                                                   : std::vector<testing::ScriptedExit>{},
                                         TableWithLeaf1());
    v->out = &tables[i];
    v->sets_out = &sets[i];
    return v;
  };
  options_.smp = 2;
  options_.cpu = {{cpuid_feature::kX2Apic, false}, {cpuid_feature::kTscDeadline, true}};
  ASSERT_EQ(Run(&hv).status, 1);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(sets[i], 1) << i;
    EXPECT_FALSE(tables[i].Has(cpuid_feature::kX2Apic)) << i;
    EXPECT_TRUE(tables[i].Has(cpuid_feature::kTscDeadline)) << i;
  }
}

TEST_F(VmmTest, CpuFlagOnALeafTheBackendLacksIsStatus2AndNothingRuns) {
  FakeHypervisor hv;
  std::vector<FakeVcpu*> made;
  hv.make_vcpu = [&](uint32_t i) -> std::unique_ptr<Vcpu> {
    auto v = std::make_unique<FakeCpuidVcpu>(i, std::vector{Out32(0xf4, 0)}, TableWithLeaf1());
    made.push_back(v.get());
    return v;
  };
  options_.cpu = {{cpuid_feature::kSmep, true}};
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 2);
  EXPECT_EQ(v.reason.rfind("--cpu +smep: ", 0), 0u) << v.reason;
  EXPECT_NE(v.reason.find("no CPUID leaf 0x7.0"), std::string::npos) << v.reason;
}

TEST_F(VmmTest, BadKernelIsStatus2BeforeAnyBackendIsOpened) {
  FakeHypervisor hv;
  options_.kernel = testing::WriteTempFile("not_elf", {'#', '!', '/', 'b', 'i', 'n'});
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 2);
  EXPECT_EQ(v.reason, "KERNEL " + options_.kernel + ": not an ELF file (no \\x7fELF magic)");
  EXPECT_TRUE(hv.configs.empty());
  options_.kernel = testing::TempPath("missing");
  EXPECT_EQ(Run(&hv).reason, "KERNEL " + options_.kernel + ": No such file or directory");
}

TEST_F(VmmTest, InitrdOverTheLimitIsStatus2) {
  FakeHypervisor hv;
  options_.initrd = testing::WriteTempFile("big_env", std::vector<uint8_t>(16385, 'x'));
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 2);
  EXPECT_NE(v.reason.find("16385 bytes, more than the 16384 allowed"), std::string::npos)
      << v.reason;
}

TEST_F(VmmTest, TimeoutIsStatus124AndEndsEveryVcpu) {
  FakeHypervisor hv;
  hv.make_vcpu = [](uint32_t i) {
    return std::make_unique<FakeVcpu>(i, std::vector<testing::ScriptedExit>{});  // never exits
  };
  options_.smp = 3;
  options_.timeout_s = 1;
  const Verdict v = Run(&hv);
  EXPECT_EQ(v.status, 124);
  EXPECT_EQ(v.reason, "timeout: the guest still ran after 1 s (--timeout)");
}

TEST(MainTest, JsonReportIsTheLastLineAfterTheConsole) {
  FakeHypervisor hv;
  hv.make_vcpu = [](uint32_t i) {
    return std::make_unique<FakeVcpu>(i, std::vector{Out(0x3f8, 1, {'n', 'o', ' ', 'n', 'l'}),
                                                     Out(0x1234, 1, {0}), Out32(0xf4, 1)});
  };
  const std::string kernel = testing::WriteTempFile("main_kernel", ElfBuilder::Typical(kCode, 0x1000).Build());
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const char* args[] = {"--json", "--smp", "1", kernel.c_str()};
  EXPECT_EQ(Main(args, testing::FakeRegistry(&hv), out, err), 3);
  std::rewind(out);
  std::string text;
  for (int c; (c = std::fgetc(out)) != EOF;) text += static_cast<char>(c);
  std::rewind(err);
  EXPECT_EQ(std::fgetc(err), EOF);  // a guest verdict prints nothing on stderr
  ASSERT_EQ(text.rfind("no nl\n{", 0), 0u) << text;
  EXPECT_EQ(text.back(), '\n');
  for (const char* field :
       {"\"backend\":\"fake\"", "\"vcpus\":1", "\"memory_mib\":128", "\"irqchip\":true",
        "\"pit\":true", "\"pit_note\":null", "\"irq_lines\":false",
        "\"exits\":{\"io\":3,\"mmio\":0,\"halt\":0,\"shutdown\":0,\"cancelled\":0,"
        "\"internal_error\":0,\"unknown\":0,\"unsupported_instruction\":0}",
        "\"unclaimed\":{\"io_read\":0,\"io_write\":1,\"mmio_read\":0,\"mmio_write\":0}",
        "\"console_bytes\":5", "\"first_exit_ns\":", "\"total_ns\":", "\"debug_exit_code\":1",
        "\"status\":3", "\"reason\":\"the guest wrote 1 to the debug-exit port 0xf4\"}"}) {
    EXPECT_NE(text.find(field), std::string::npos) << field << " in " << text;
  }
  std::fclose(out);
  std::fclose(err);
}

TEST(MainTest, UsageErrorIsStatus2OnStderr) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  const char* args[] = {"--smp", "zero", "k"};
  EXPECT_EQ(Main(args, testing::FakeRegistry(nullptr), out, err), 2);
  std::rewind(err);
  char line[128] = {};
  ASSERT_NE(std::fgets(line, sizeof line, err), nullptr);
  EXPECT_STREQ(line, "virt-run: --smp: 'zero' is not a number in 1..1024\n");
  std::fclose(out);
  std::fclose(err);
}

}  // namespace
}  // namespace virt::run
