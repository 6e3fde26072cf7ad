// The real virt-run binary on crafted bad kernel files (made here, no blobs): exit status 2 and
// the one-line message for each, on any host (inputs are checked before a backend is opened).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "elf_builder.h"
#include "run_binary.h"
#include "temp_file.h"

namespace virt::run {
namespace {

using testing::ElfBuilder;
using testing::RunBinary;

ElfBuilder Good() { return ElfBuilder::Typical({0x90, 0xf4}, 0x2000); }

struct Case {
  const char* name;
  std::vector<uint8_t> file;
  std::vector<std::string> extra_args;
  const char* message;
};

std::vector<Case> Cases() {
  std::vector<Case> cases;
  cases.push_back({"text", {'h', 'i', '\n'}, {}, "not an ELF file (no \\x7fELF magic)"});
  {
    ElfBuilder b = Good();
    b.ident_class = 2;
    cases.push_back({"elf64", b.Build(), {}, "a 64-bit ELF (ELFCLASS64)"});
  }
  {
    ElfBuilder b = Good();
    b.with_multiboot = false;
    cases.push_back({"no_multiboot", b.Build(), {}, "no multiboot header (magic 0x1BADB002)"});
  }
  {
    ElfBuilder b = Good();
    b.multiboot_flags = 4;
    cases.push_back({"video", b.Build(), {}, "asks for a video mode (flags bit 2)"});
  }
  {
    std::vector<uint8_t> f = Good().Build();
    f.resize(0x1001);
    cases.push_back({"truncated", f, {}, "truncated: segment 0: file bytes [0x1000, 0x1002)"});
  }
  {
    ElfBuilder b = Good();
    b.phdrs[0].paddr = 0x100000;
    b.phdrs[0].memsz = 64u << 20;
    cases.push_back({"memsz_over_ram", b.Build(), {"-m", "32"}, "is larger than guest RAM (32 MiB)"});
  }
  {
    ElfBuilder b = Good();
    b.phdrs[0].paddr = 0x1ffe000;
    b.entry = 0x1ffe000;
    cases.push_back({"over_info", b.Build(), {"-m", "32"}, "overlaps the multiboot info area"});
  }
  {
    ElfBuilder b = Good();
    b.phdrs[0].paddr = 0x4000000;
    b.entry = 0x4000000;
    cases.push_back({"outside_ram", b.Build(), {"-m", "32"}, "outside guest RAM below 4 GiB"});
  }
  return cases;
}

TEST(VirtRunCliTest, BadKernelsExit2WithTheirMessage) {
  for (const Case& c : Cases()) {
    const std::string path = testing::WriteTempFile(c.name, c.file);
    std::vector<std::string> args = c.extra_args;
    args.push_back(path);
    const auto r = RunBinary(VIRT_RUN_BINARY, args);
    EXPECT_EQ(r.status, 2) << c.name << ": " << r.err;
    const std::string want = "virt-run: KERNEL " + path + ": ";
    EXPECT_EQ(r.err.rfind(want, 0), 0u) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << c.name << ": one line: " << r.err;
    EXPECT_EQ(r.out, "") << c.name;
  }
}

TEST(VirtRunCliTest, MissingKernelAndBadOptions) {
  auto r = RunBinary(VIRT_RUN_BINARY, {testing::TempPath("does_not_exist")});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("No such file or directory"), std::string::npos) << r.err;

  r = RunBinary(VIRT_RUN_BINARY, {"--cpu", "+no-such-feature", "k"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("virt-run: --cpu: unknown CPUID feature 'no-such-feature'", 0), 0u) << r.err;

  r = RunBinary(VIRT_RUN_BINARY, {});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("virt-run: no KERNEL given\nusage: virt-run", 0), 0u) << r.err;

  r = RunBinary(VIRT_RUN_BINARY, {"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out.rfind("usage: virt-run", 0), 0u) << r.out;
}

TEST(VirtRunCliTest, InitrdOverTheLimit) {
  const std::string kernel = testing::WriteTempFile("initrd_kernel", Good().Build());
  const std::string env = testing::WriteTempFile("initrd_big", std::vector<uint8_t>(20000, 'x'));
  const auto r = RunBinary(VIRT_RUN_BINARY, {"--initrd", env, kernel});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "virt-run: --initrd " + env + ": 20000 bytes, more than the 16384 allowed\n");
}

TEST(VirtRunCliTest, UnknownBackendFromTheEnvironmentIsAUsageError) {
  const std::string kernel = testing::WriteTempFile("env_kernel", Good().Build());
  ::setenv("VIRT_BACKEND", "nonesuch", 1);
  const auto r = RunBinary(VIRT_RUN_BINARY, {kernel});
  ::unsetenv("VIRT_BACKEND");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unknown backend \"nonesuch\""), std::string::npos) << r.err;
}

}  // namespace
}  // namespace virt::run
