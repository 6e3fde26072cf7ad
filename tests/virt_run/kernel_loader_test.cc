// The kernel loader on crafted ELF32 files: every bad input has its own message, good files
// load the right bytes at the right addresses with bss zeroed.
#include "virt_run/kernel_loader.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "elf_builder.h"
#include "virt_run/boot_info.h"

namespace virt::run {
namespace {

using testing::ElfBuilder;
using testing::Phdr;

GuestLayout Layout128() { return *GuestLayout::ForMemory(128); }
AddressRange BootArea(const GuestLayout& layout) {
  return BuildBootInfo(layout, "kernel ", std::nullopt)->area;
}

Checked<KernelImage> Parse(const std::vector<uint8_t>& file) {
  const GuestLayout layout = Layout128();
  return ParseKernel(file, layout, BootArea(layout));
}

struct BadCase {
  const char* name;
  std::function<std::vector<uint8_t>()> file;
  const char* message;  // a substring only this case's message has
};

std::vector<uint8_t> Typical() { return ElfBuilder::Typical({0x90, 0xf4}, 0x2000).Build(); }

ElfBuilder TypicalBuilder() { return ElfBuilder::Typical({0x90, 0xf4}, 0x2000); }

std::vector<uint8_t> With(std::function<void(ElfBuilder&)> change) {
  ElfBuilder b = TypicalBuilder();
  change(b);
  return b.Build();
}

const std::vector<BadCase>& BadCases() {
  static const std::vector<BadCase> cases = {
      {"empty", [] { return std::vector<uint8_t>{}; }, "not an ELF file"},
      {"text", [] { return std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', '\n'}; },
       "not an ELF file"},
      {"elf64", [] { return With([](ElfBuilder& b) { b.ident_class = 2; }); }, "a 64-bit ELF"},
      {"class3", [] { return With([](ElfBuilder& b) { b.ident_class = 3; }); },
       "not a 32-bit ELF (EI_CLASS 3)"},
      {"short_header", [] { auto f = Typical(); f.resize(40); return f; },
       "truncated ELF header: 40 bytes"},
      {"big_endian", [] { return With([](ElfBuilder& b) { b.ident_data = 2; }); },
       "not a little-endian ELF"},
      {"shared_object", [] { return With([](ElfBuilder& b) { b.type = 3; }); },
       "not an executable ELF (e_type 3"},
      {"x86_64_machine", [] { return With([](ElfBuilder& b) { b.machine = 62; }); },
       "not an i386 ELF (e_machine 62"},
      {"version", [] { return With([](ElfBuilder& b) { b.version = 7; }); },
       "unknown ELF version 7"},
      {"no_phdrs", [] { return With([](ElfBuilder& b) { b.phdrs.clear(); }); },
       "no program headers"},
      {"phentsize", [] { return With([](ElfBuilder& b) { b.phentsize = 56; }); },
       "e_phentsize 56"},
      {"phdrs_past_end", [] { return With([](ElfBuilder& b) { b.phoff = 0xfff0; }); },
       "truncated: program headers at e_phoff 0xfff0"},
      {"filesz_over_memsz",
       [] { return With([](ElfBuilder& b) { b.phdrs[0].memsz = 1; }); },
       "p_filesz 0x2 > p_memsz 0x1"},
      {"segment_past_end",
       [] { return With([](ElfBuilder& b) { b.phdrs[0].filesz = 0x2000; }); },
       "truncated: segment 0: file bytes [0x1000, 0x3000)"},
      {"offset_past_end",
       [] { return With([](ElfBuilder& b) { b.phdrs[0].offset = 0xfffffff0; }); },
       "file bytes [0xfffffff0, 0xfffffff2)"},
      {"paddr_overflow",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs[0].paddr = 0xfffff000;
           b.phdrs[0].memsz = 0x2000;
         });
       },
       "overflows 32 bits"},
      {"no_load",
       [] { return With([](ElfBuilder& b) { b.phdrs[0].type = 4; }); },
       "no loadable segment"},
      {"only_empty_load",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs[0].filesz = 0;
           b.phdrs[0].memsz = 0;
         });
       },
       "no loadable segment"},
      {"no_multiboot", [] { return With([](ElfBuilder& b) { b.with_multiboot = false; }); },
       "no multiboot header"},
      {"multiboot_after_8k",
       [] {
         return With([](ElfBuilder& b) {
           b.multiboot_offset = 8192;
           b.size = 12288;
         });
       },
       "no multiboot header"},
      {"multiboot_unaligned",
       [] { return With([](ElfBuilder& b) { b.multiboot_offset = 0x102; }); },
       "no multiboot header"},
      {"bad_checksum", [] { return With([](ElfBuilder& b) { b.bad_checksum = true; }); },
       "checksum is wrong"},
      {"video_mode", [] { return With([](ElfBuilder& b) { b.multiboot_flags = 4; }); },
       "video mode"},
      {"aout_kludge", [] { return With([](ElfBuilder& b) { b.multiboot_flags = 0x10000; }); },
       "a.out address fields"},
      {"unknown_required_flag",
       [] { return With([](ElfBuilder& b) { b.multiboot_flags = 0x20 | 0x2; }); },
       "requires unknown features (flags 0x20)"},
      {"memsz_over_ram",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs[0].paddr = 0x100000;
           b.phdrs[0].memsz = 200u << 20;
         });
       },
       "larger than guest RAM (128 MiB)"},
      {"outside_ram",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs[0].paddr = 0x10000000;
           b.entry = 0x10000000;
         });
       },
       "outside guest RAM below 4 GiB [0x0, 0x8000000)"},
      {"vga_hole",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs[0].paddr = 0xb8000;
           b.entry = 0xb8000;
         });
       },
       "VGA/BIOS hole"},
      {"boot_info_area",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs[0].paddr = 0x7ffe000;
           b.entry = 0x7ffe000;
         });
       },
       "overlaps the multiboot info area"},
      {"segments_overlap",
       [] {
         return With([](ElfBuilder& b) {
           b.phdrs.push_back(Phdr{1, 0x1000, 0x401000, 0x401000, 2, 2});
         });
       },
       "segments 0 and 1 overlap at 0x401000"},
      {"entry_outside", [] { return With([](ElfBuilder& b) { b.entry = 0x500000; }); },
       "entry point e_entry 0x500000"},
  };
  return cases;
}

class BadKernelTest : public ::testing::TestWithParam<size_t> {};

TEST_P(BadKernelTest, IsRejectedWithItsOwnMessage) {
  const BadCase& c = BadCases()[GetParam()];
  auto image = Parse(c.file());
  ASSERT_FALSE(image) << c.name << " was accepted";
  EXPECT_NE(image.error().find(c.message), std::string::npos)
      << c.name << ": got \"" << image.error() << "\"";
  // No other case's marker fits this message: each failure is told apart.
  for (const BadCase& other : BadCases()) {
    if (&other == &c || std::string(other.message) == c.message) continue;
    EXPECT_EQ(image.error().find(other.message), std::string::npos)
        << c.name << "'s message \"" << image.error() << "\" also reads as " << other.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllBadInputs, BadKernelTest,
                         ::testing::Range<size_t>(0, BadCases().size()),
                         [](const auto& info) { return std::string(BadCases()[info.param].name); });

TEST(KernelLoaderTest, TypicalKernelLoadsItsBytesAndZeroesBss) {
  ElfBuilder b = ElfBuilder::Typical({0x11, 0x22, 0x33, 0x44, 0x55}, 0x3000);
  const std::vector<uint8_t> file = b.Build();
  auto image = Parse(file);
  ASSERT_TRUE(image) << image.error();
  EXPECT_EQ(image->entry, 0x400000u);
  EXPECT_EQ(image->header.offset, 0x100u);
  EXPECT_EQ(image->image, (AddressRange{0x400000, 0x403000}));

  std::vector<uint8_t> ram(8u << 20, 0xAA);  // not zero: the loader must clear the bss
  LoadKernel(*image, file, ram, /*zero_filled=*/false);
  EXPECT_EQ(std::vector<uint8_t>(ram.begin() + 0x400000, ram.begin() + 0x400005),
            (std::vector<uint8_t>{0x11, 0x22, 0x33, 0x44, 0x55}));
  for (uint32_t a = 0x400005; a < 0x403000; ++a) ASSERT_EQ(ram[a], 0) << Hex(a);
  EXPECT_EQ(ram[0x3fffff], 0xAA);
  EXPECT_EQ(ram[0x403000], 0xAA);
}

TEST(KernelLoaderTest, KnownZeroMemoryIsNotTouchedBeyondTheFileBytes) {
  const std::vector<uint8_t> file = Typical();
  auto image = Parse(file);
  ASSERT_TRUE(image) << image.error();
  std::vector<uint8_t> ram(8u << 20, 0xAA);
  LoadKernel(*image, file, ram, /*zero_filled=*/true);
  EXPECT_EQ(ram[0x400000], 0x90);
  EXPECT_EQ(ram[0x400001], 0xf4);
  EXPECT_EQ(ram[0x400002], 0xAA);  // the bss is left to the fresh, zero pages
}

TEST(KernelLoaderTest, SegmentsAreSortedAndEachGoesToItsPaddr) {
  ElfBuilder b;
  b.entry = 0x200000;
  // Out of order in the file, vaddr != paddr (the loader uses p_paddr), a pure-bss segment.
  b.phdrs.push_back(Phdr{1, 0x2000, 0xc0300000, 0x300000, 3, 0x10});
  b.phdrs.push_back(Phdr{1, 0x1000, 0xc0200000, 0x200000, 2, 2});
  b.phdrs.push_back(Phdr{1, 0, 0, 0x500000, 0, 0x1000});
  b.phdrs.push_back(Phdr{4, 0x1000, 0, 0, 2, 2});  // PT_NOTE: ignored
  b.payloads.push_back({0x1000, {0xA1, 0xA2}});
  b.payloads.push_back({0x2000, {0xB1, 0xB2, 0xB3}});
  const std::vector<uint8_t> file = b.Build();
  auto image = Parse(file);
  ASSERT_TRUE(image) << image.error();
  ASSERT_EQ(image->segments.size(), 3u);
  EXPECT_EQ(image->segments[0].paddr, 0x200000u);
  EXPECT_EQ(image->segments[1].paddr, 0x300000u);
  EXPECT_EQ(image->segments[2].paddr, 0x500000u);
  EXPECT_EQ(image->image, (AddressRange{0x200000, 0x501000}));

  std::vector<uint8_t> ram(8u << 20, 0xAA);
  LoadKernel(*image, file, ram, false);
  EXPECT_EQ(ram[0x200000], 0xA1);
  EXPECT_EQ(ram[0x200001], 0xA2);
  EXPECT_EQ(ram[0x300000], 0xB1);
  EXPECT_EQ(ram[0x300002], 0xB3);
  EXPECT_EQ(ram[0x300003], 0);
  EXPECT_EQ(ram[0x30000f], 0);
  EXPECT_EQ(ram[0x300010], 0xAA);
  EXPECT_EQ(ram[0x500000], 0);
  EXPECT_EQ(ram[0x500fff], 0);
}

TEST(KernelLoaderTest, RealModeKernelLinkedAt32KLoads) {
  // x86/realmode.lds puts the image at 0x8000, over QEMU's 0x9000/0x9500 info: here it fits.
  ElfBuilder b;
  b.entry = 0x8000;
  b.multiboot_offset = 0x1000;
  b.phdrs.push_back(Phdr{1, 0x1000, 0x8000, 0x8000, 0x100, 0x12000});
  b.size = 0x1100;
  auto image = Parse(b.Build());
  ASSERT_TRUE(image) << image.error();
  EXPECT_EQ(image->image, (AddressRange{0x8000, 0x1a000}));
}

TEST(KernelLoaderTest, MultibootFlagsPageAlignAndMemoryInfoAreAccepted) {
  auto image = Parse(With([](ElfBuilder& b) { b.multiboot_flags = 0x3 | 0x80000000u; }));
  ASSERT_TRUE(image) << image.error();
  EXPECT_EQ(image->header.flags, 0x80000003u);
}

TEST(KernelLoaderTest, FirstValidHeaderWinsOverAnEarlierBadChecksum) {
  ElfBuilder b = TypicalBuilder();
  b.multiboot_offset = 0x200;
  std::vector<uint8_t> file = b.Build();
  const uint8_t junk[] = {0x02, 0xb0, 0xad, 0x1b, 0, 0, 0, 0, 1, 2, 3, 4};  // magic, bad sum
  std::memcpy(file.data() + 0x100, junk, sizeof junk);
  auto image = Parse(file);
  ASSERT_TRUE(image) << image.error();
  EXPECT_EQ(image->header.offset, 0x200u);
}

}  // namespace
}  // namespace virt::run
