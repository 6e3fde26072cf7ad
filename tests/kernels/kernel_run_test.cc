// kernel_run_test.cc: each test kernel run through the real virt-run binary on /dev/kvm: its exit
// status, its SUMMARY line (exact, or else consistent with its verdict lines) and key lines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kernel_output.h"
#include "run_process.h"

namespace virt::kernels {
namespace {

// virt-run's --timeout for every run: far above a kernel's run time (well under a second),
// so only a hang reaches it (status 124).
constexpr const char* kTimeoutSeconds = "30";

// Why this host cannot run KVM guests for us, or nothing when /dev/kvm opens. As
// tests/kvm/real_kvm_test.h: missing or not permitted is a skip, any other error a failure.
struct KvmAccess {
  bool usable = false;
  bool skip = false;
  std::string why;
};

KvmAccess ProbeKvm() {
  const int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    return {.usable = true, .skip = false, .why = ""};
  }
  const int e = errno;
  const bool skip = e == ENOENT || e == ENODEV || e == ENXIO || e == EACCES || e == EPERM;
  return {.skip = skip, .why = std::string("/dev/kvm: ") + std::strerror(e)};
}

struct KernelRun {
  const char* name;
  const char* kernel;  // a .flat file in VIRT_KERNEL_DIR
  std::vector<std::string> options;
  int status;  // virt-run's exit status: (code << 1) | 1
  // The exact SUMMARY line; "" when there must be none; nullptr when it depends on the host
  // (then it must agree with the PASS/FAIL/SKIP lines).
  const char* summary;
  std::vector<std::string> lines;  // lines that must appear ('*' at the end: a prefix)
};

void PrintTo(const KernelRun& r, std::ostream* os) { *os << r.name; }

const KernelRun kRuns[] = {
    {"console_pass", "console.flat", {"--append", "code=0"}, 1, "SUMMARY: 1 tests",
     {"PASS: console: the text above is on the console"}},
    {"console_fail", "console.flat", {"--append", "code=1"}, 3,
     "SUMMARY: 1 tests, 1 unexpected failures", {"FAIL: console: failing on purpose (code=1)"}},
    {"console_skip", "console.flat", {"--append", "code=38"}, 77, "SUMMARY: 1 tests, 1 skipped",
     {"SKIP: console: skipping on purpose (code=38)"}},
    {"console_abort", "console.flat", {"--append", "code=63"}, 127, "SUMMARY: 0 tests",
     {"ABORT: console: aborting on purpose (code=63)"}},
    {"console_exit_5", "console.flat", {"--append", "code=5"}, 11, "", {"console: exit code 5"}},
    {"console_exit_127", "console.flat", {"--append", "code=127"}, 255, "",
     {"console: exit code 127"}},

    {"smp_4_xapic", "smp.flat", {"--smp", "4", "--append", "cpus=4"}, 1, "SUMMARY: 13 tests",
     {"PASS: fw_cfg NB_CPUS is 4 (expected 4)",
      "INFO: CPU 1: AP online, LAPIC ID *", "INFO: CPU 2: AP online, LAPIC ID *",
      "INFO: CPU 3: AP online, LAPIC ID *",
      "PASS: 4 of 4 CPUs online after INIT/SIPI/SIPI (xAPIC mode)",
      "PASS: the 4 CPUs have distinct APIC IDs (below 32)",
      "PASS: all-but-self IPI 0x41 arrives once at each of the 3 APs, not at the boot CPU",
      "PASS: self IPI 0x42 arrives once at the boot CPU only"}},
    {"smp_4_x2apic", "smp.flat",
     {"--smp", "4", "--cpu", "+x2apic", "--append", "cpus=4 apic=x2apic"}, 1,
     "SUMMARY: 13 tests",
     {"PASS: 4 of 4 CPUs online after INIT/SIPI/SIPI (x2APIC mode)",
      "PASS: all-but-self IPI 0x41 arrives once at each of the 3 APs, not at the boot CPU"}},

    {"lapic_timer_xapic", "lapic_timer.flat", {"--cpu", "+tsc-deadline"}, 1, "SUMMARY: 9 tests",
     {"PASS: xAPIC one-shot timer fires on vector 0x50",
      "PASS: periodic timer fires repeatedly on vector 0x51 *",
      "PASS: stopped periodic timer stays quiet for 4 periods",
      "PASS: TSC-deadline timer fires on vector 0x52"}},
    {"lapic_timer_x2apic", "lapic_timer.flat",
     {"--cpu", "+x2apic,+tsc-deadline", "--append", "apic=x2apic"}, 1, "SUMMARY: 9 tests",
     {"PASS: x2APIC one-shot timer fires on vector 0x50",
      "PASS: TSC-deadline timer fires on vector 0x52"}},
    {"lapic_timer_no_tsc_deadline", "lapic_timer.flat", {"--cpu", "-tsc-deadline"}, 1,
     "SUMMARY: 8 tests, 1 skipped", {"SKIP: TSC-deadline timer: CPUID.1:ECX[24] is 0"}},
    {"lapic_timer_x2apic_hidden", "lapic_timer.flat",
     {"--cpu", "-x2apic", "--append", "apic=x2apic"}, 77, "SUMMARY: 1 tests, 1 skipped",
     {"SKIP: apic=x2apic: CPUID.1:ECX[21] (x2APIC) is 0"}},

    {"ioapic_lines_10_11", "ioapic.flat", {}, 1, "SUMMARY: 15 tests",
     {"PASS: edge line 10: raised, arrives on vector 0x60",
      "PASS: edge line 10: two pulses, two interrupts (2)",
      "PASS: level line 11: held, interrupts again after each EOI (3 of 3)",
      "PASS: level line 11: held, dropped in the handler, then it stops*",
      "PASS: level line 11: still held, delivered on unmask"}},
    {"ioapic_lines_5_19", "ioapic.flat", {"--append", "edge=5 level=19"}, 1,
     "SUMMARY: 15 tests",
     {"PASS: edge line 5: raised, arrives on vector 0x60",
      "PASS: level line 19: held, interrupts again after each EOI (3 of 3)"}},

    {"level_resample_line_12", "level_resample.flat", {}, 1, "SUMMARY: 11 tests",
     {"PASS: line 12, EOI without ack, then ack + EOI: interrupts again after each EOI until "
      "the ack (2 of 2)",
      "PASS: line 12, EOI without ack, then ack + EOI: after ack + EOI it stops*",
      "PASS: line 12, EOI without ack, then ack + EOI: the device saw one resample per "
      "delivery*"}},
    {"level_resample_line_20", "level_resample.flat", {"--append", "line=20"}, 1,
     "SUMMARY: 11 tests",
     {"PASS: line 20, two EOIs without ack, then ack + EOI: interrupts again after each EOI "
      "until the ack (3 of 3)"}},

    {"cpuid_x2apic_hidden", "cpuid.flat",
     {"--smp", "4", "--cpu", "-x2apic,+tsc-deadline", "--append", "x2apic=0 tsc_deadline=1"},
     1, nullptr,
     {"PASS: 4 of 4 CPUs online", "PASS: x2APIC (bit 21): CPUID.1:ECX reads 0 on 4 of 4 CPUs",
      "PASS: TSC-deadline (bit 24): CPUID.1:ECX reads 1 on 4 of 4 CPUs",
      "PASS: x2APIC hidden: enabling it (APIC_BASE.EXTD) raises #GP on 4 of 4 CPUs",
      "PASS: CPU 3: CPUID.1 APIC ID *"}},
    {"cpuid_x2apic_shown", "cpuid.flat",
     {"--smp", "4", "--cpu", "+x2apic,-tsc-deadline", "--append", "x2apic=1 tsc_deadline=0"},
     1, nullptr,
     {"PASS: x2APIC (bit 21): CPUID.1:ECX reads 1 on 4 of 4 CPUs",
      "PASS: TSC-deadline (bit 24): CPUID.1:ECX reads 0 on 4 of 4 CPUs",
      "PASS: x2APIC shown: enabled, its ID register matches CPUID on 4 of 4 CPUs",
      "PASS: CPU 3: CPUID.1 APIC ID *"}},
    {"cpuid_wrong_expectation_fails", "cpuid.flat",
     {"--smp", "4", "--cpu", "-x2apic", "--append", "x2apic=1"}, 3, nullptr,
     {"FAIL: x2APIC (bit 21): CPUID.1:ECX reads 1 on 0 of 4 CPUs",
      "FAIL: x2APIC shown: enabled, its ID register matches CPUID on 0 of 4 CPUs"}},

    {"fw_cfg_3_cpus_64_mib", "fw_cfg.flat",
     {"--smp", "3", "-m", "64", "--append", "cpus=3 mem=64"}, 1, "SUMMARY: 4 tests",
     {"PASS: fw_cfg NB_CPUS is 3 (expected 3)",
      "PASS: fw_cfg RAM_SIZE is 0x4000000 (expected 64 MiB)"}},
    {"fw_cfg_defaults", "fw_cfg.flat", {"--append", "cpus=1 mem=128"}, 1, "SUMMARY: 4 tests",
     {"PASS: fw_cfg NB_CPUS is 1 (expected 1)",
      "PASS: fw_cfg RAM_SIZE is 0x8000000 (expected 128 MiB)"}},
    {"fw_cfg_mismatch_fails", "fw_cfg.flat",
     {"--smp", "2", "-m", "128", "--append", "cpus=3 mem=64"}, 3,
     "SUMMARY: 4 tests, 2 unexpected failures",
     {"FAIL: fw_cfg NB_CPUS is 2 (expected 3)",
      "FAIL: fw_cfg RAM_SIZE is 0x8000000 (expected 64 MiB)"}},
};

// The build's paths, unless the environment moves them (VIRT_RUN_BINARY, VIRT_TEST_KERNEL_DIR:
// e.g. tools/nested-kvm, which copies the binaries into a guest).
std::string FromEnv(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string KernelPath(const char* kernel) {
  return FromEnv("VIRT_TEST_KERNEL_DIR", VIRT_KERNEL_DIR) + "/" + kernel;
}

ProcessResult RunVirtRun(const std::vector<std::string>& options, const std::string& kernel) {
  std::vector<std::string> argv = {FromEnv("VIRT_RUN_BINARY", VIRT_RUN_PATH), "--backend", "kvm",
                                   "--timeout", kTimeoutSeconds};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(kernel);
  return RunProcess(argv);
}

class KernelRunTest : public ::testing::TestWithParam<KernelRun> {
 protected:
  void SetUp() override {
    const KvmAccess kvm = ProbeKvm();
    if (kvm.skip) GTEST_SKIP() << "the test kernels need a usable /dev/kvm: " << kvm.why;
    ASSERT_TRUE(kvm.usable) << kvm.why;
  }
};

TEST_P(KernelRunTest, Verdict) {
  const KernelRun& run = GetParam();
  const ProcessResult r = RunVirtRun(run.options, KernelPath(run.kernel));
  const KernelOutput out(r.out);
  const std::string context = "stdout:\n" + r.out + "\nstderr:\n" + r.err;
  EXPECT_EQ(r.status, run.status) << context;
  if (run.status == 1) {
    EXPECT_EQ(out.failures(), 0) << context;
  }
  if (run.summary == nullptr) {
    ASSERT_TRUE(out.summary().has_value()) << context;
    EXPECT_EQ(*out.summary(), out.ExpectedSummary()) << context;
  } else if (*run.summary == '\0') {
    EXPECT_FALSE(out.summary().has_value()) << context;
  } else {
    EXPECT_EQ(out.summary().value_or("(no SUMMARY line)"), run.summary) << context;
  }
  for (const std::string& line : run.lines) EXPECT_TRUE(out.Has(line)) << line << "\n" << context;
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelRunTest, ::testing::ValuesIn(kRuns),
                         [](const auto& info) { return std::string(info.param.name); });

// The console kernel's whole output, byte for byte: the UART turns "\n" into "\r\n" and
// nothing else reaches stdout (no divisor byte written under DLAB, no 'D' or 'L').
class ConsoleTextTest : public KernelRunTest {};

TEST_F(ConsoleTextTest, ExactBytes) {
  const std::string kernel = KernelPath("console.flat");
  const ProcessResult r = RunVirtRun({"--append", "code=0 second-arg"}, kernel);
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string expected =
      "console: hello from the console kernel\r\n"
      "console: argv[0] " + kernel + "\r\n"
      "console: argv[1] code=0\r\n"
      "console: argv[2] second-arg\r\n"
      "console: 42 -7 4000000000 0xbeef 0xCAFE 00017 [left  ] [ right] Z 100%\r\n"
      "console: 18446744073709551615 0x123456789abcdef0\r\n"
      "console: exit code 0\r\n"
      "PASS: console: the text above is on the console\r\n"
      "SUMMARY: 1 tests\r\n";
  EXPECT_EQ(r.out, expected);
}

// The output parser the checks above rely on, without a hypervisor.
TEST(KernelOutputTest, CountsVerdictsAndFindsTheLastSummary) {
  const KernelOutput out(
      "INFO: x\r\nPASS: a\r\nFAIL: b\nSKIP: c\r\nSUMMARY: 1 tests\r\nSUMMARY: 3 tests, 1 "
      "unexpected failures, 1 skipped\r\n");
  EXPECT_EQ(out.passes(), 1);
  EXPECT_EQ(out.failures(), 1);
  EXPECT_EQ(out.skips(), 1);
  EXPECT_EQ(out.summary(), "SUMMARY: 3 tests, 1 unexpected failures, 1 skipped");
  EXPECT_EQ(out.ExpectedSummary(), *out.summary());
  EXPECT_TRUE(out.Has("PASS: a"));
  EXPECT_FALSE(out.Has("PASS: "));
  EXPECT_TRUE(out.Has("PASS: *"));
  EXPECT_FALSE(KernelOutput("PASS: a\n").summary().has_value());
  EXPECT_EQ(KernelOutput("").ExpectedSummary(), "SUMMARY: 0 tests");
}

}  // namespace
}  // namespace virt::kernels
