// ParseOptions: the contract's command line, both value spellings, and a clear error for each
// bad value.
#include "virt_run/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace virt::run {
namespace {

Checked<Options> ParseArgs(std::vector<const char*> args) { return ParseOptions(args); }

std::string ErrorOf(std::vector<const char*> args) {
  auto o = ParseArgs(args);
  return o ? std::string("(accepted)") : o.error();
}

TEST(OptionsTest, Defaults) {
  auto o = ParseArgs({"x86/apic.flat"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->kernel, "x86/apic.flat");
  EXPECT_EQ(o->backend, "auto");
  EXPECT_EQ(o->smp, 1u);
  EXPECT_EQ(o->memory_mib, 128u);
  EXPECT_EQ(o->timeout_s, 90u);
  EXPECT_EQ(o->append, "");
  EXPECT_FALSE(o->initrd);
  EXPECT_TRUE(o->cpu.empty());
  EXPECT_FALSE(o->json);
}

TEST(OptionsTest, EveryOptionBothSpellings) {
  auto o = ParseArgs({"--backend", "kvm", "--smp=4", "-m", "256", "--append", "-v --x",
                  "--initrd=env", "--cpu", "+x2apic,-tsc-deadline", "--timeout=0", "--json",
                  "k.flat"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->backend, "kvm");
  EXPECT_EQ(o->smp, 4u);
  EXPECT_EQ(o->memory_mib, 256u);
  EXPECT_EQ(o->append, "-v --x");  // a value may start with '-'
  EXPECT_EQ(o->initrd, "env");
  ASSERT_EQ(o->cpu.size(), 2u);
  EXPECT_EQ(o->cpu[0].feature, cpuid_feature::kX2Apic);
  EXPECT_TRUE(o->cpu[0].on);
  EXPECT_EQ(o->cpu[1].feature, cpuid_feature::kTscDeadline);
  EXPECT_FALSE(o->cpu[1].on);
  EXPECT_EQ(o->timeout_s, 0u);
  EXPECT_TRUE(o->json);
  EXPECT_EQ(o->kernel, "k.flat");
}

TEST(OptionsTest, MemorySuffixes) {
  EXPECT_EQ(ParseArgs({"-m", "2G", "k"})->memory_mib, 2048u);
  EXPECT_EQ(ParseArgs({"-m", "512M", "k"})->memory_mib, 512u);
  EXPECT_EQ(ParseArgs({"-m=64", "k"})->memory_mib, 64u);
}

TEST(OptionsTest, RepeatedCpuListsAddUp) {
  auto o = ParseArgs({"--cpu", "+x2apic", "--cpu=-x2apic", "k"});
  ASSERT_TRUE(o) << o.error();
  ASSERT_EQ(o->cpu.size(), 2u);
  EXPECT_FALSE(o->cpu[1].on);
}

TEST(OptionsTest, KernelAfterDoubleDash) {
  auto o = ParseArgs({"--json", "--", "--weird-name"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->kernel, "--weird-name");
}

TEST(OptionsTest, Help) {
  auto o = ParseArgs({"--help"});
  ASSERT_TRUE(o) << o.error();
  EXPECT_TRUE(o->help);
  EXPECT_NE(Usage().find("--smp N"), std::string::npos);
}

TEST(OptionsTest, ErrorsNameTheOptionAndTheValue) {
  EXPECT_EQ(ErrorOf({}), "no KERNEL given");
  EXPECT_EQ(ErrorOf({"a", "b"}), "more than one KERNEL: 'a' and 'b'");
  EXPECT_EQ(ErrorOf({"--frobnicate", "k"}), "unknown option '--frobnicate'");
  EXPECT_EQ(ErrorOf({"k", "--smp"}), "--smp needs a value");
  EXPECT_EQ(ErrorOf({"--smp", "0", "k"}), "--smp: '0' is not a number in 1..1024");
  EXPECT_EQ(ErrorOf({"--smp", "4x", "k"}), "--smp: '4x' is not a number in 1..1024");
  EXPECT_EQ(ErrorOf({"--smp", "-1", "k"}), "--smp: '-1' is not a number in 1..1024");
  EXPECT_EQ(ErrorOf({"--smp", "99999999999999999999", "k"}),
            "--smp: '99999999999999999999' is not a number in 1..1024");
  EXPECT_EQ(ErrorOf({"-m", "1", "k"}), "-m: '1' is not a size in 2..1048576 MiB");
  EXPECT_EQ(ErrorOf({"-m", "lots", "k"}), "-m: 'lots' is not a size in 2..1048576 MiB");
  EXPECT_EQ(ErrorOf({"-m", "2048G", "k"}), "-m: '2048G' is not a size in 2..1048576 MiB");
  EXPECT_EQ(ErrorOf({"--timeout", "soon", "k"}),
            "--timeout: 'soon' is not a number in 0..31536000");
  EXPECT_EQ(ErrorOf({"--backend", "xen", "k"}), "--backend: 'xen' is not kvm, mshv, whp or auto");
  EXPECT_EQ(ErrorOf({"--initrd=", "k"}), "--initrd: empty file name");
  EXPECT_EQ(ErrorOf({"--cpu", "x2apic", "k"}),
            "--cpu: 'x2apic' is not +name or -name (e.g. +x2apic,-tsc-deadline)");
  EXPECT_EQ(ErrorOf({"--cpu", "+x2apic,", "k"}),
            "--cpu: '' is not +name or -name (e.g. +x2apic,-tsc-deadline)");
  EXPECT_EQ(ErrorOf({"--cpu", "", "k"}), "--cpu: empty feature list");
  const std::string unknown = ErrorOf({"--cpu", "+avx512", "k"});
  EXPECT_EQ(unknown.rfind("--cpu: unknown CPUID feature 'avx512' (known: x2apic, tsc-deadline", 0),
            0u)
      << unknown;
}

}  // namespace
}  // namespace virt::run
