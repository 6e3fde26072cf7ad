// The crafted bad kernel files, one per malformation: what each holds, the options it is run
// with and the message virt-run must give (status 2). make_bad_kernels writes them at build time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "elf_builder.h"

namespace virt::run::testing {

struct BadKernel {
  std::string name;  // the file is <name>.elf
  std::vector<uint8_t> bytes;
  std::vector<std::string> args;  // before KERNEL
  std::string message;            // within the one line after "virt-run: KERNEL <path>: "
};

// A kernel virt-run accepts: `hlt` at 0x400000 and 8 KiB of memory there.
inline ElfBuilder GoodKernel() { return ElfBuilder::Typical({0x90, 0xf4}, 0x2000); }

inline std::vector<BadKernel> BadKernels() {
  std::vector<BadKernel> k;
  auto add = [&k](std::string name, std::vector<uint8_t> bytes, std::string message,
                  std::vector<std::string> args = {}) {
    k.push_back({std::move(name), std::move(bytes), std::move(args), std::move(message)});
  };
  auto with = [](auto edit) {
    ElfBuilder b = GoodKernel();
    edit(b);
    return b.Build();
  };
  const std::vector<uint8_t> good = GoodKernel().Build();

  // Not an ELF32 i386 executable.
  add("empty", {}, "not an ELF file (no \\x7fELF magic)");
  add("text", {'h', 'i', '\n'}, "not an ELF file (no \\x7fELF magic)");
  add("magic_only", {0x7f, 'E', 'L', 'F'}, "truncated ELF header: 4 bytes");
  add("truncated_header", std::vector<uint8_t>(good.begin(), good.begin() + 40),
      "truncated ELF header: 40 bytes, need 52");
  add("elf64", with([](ElfBuilder& b) { b.ident_class = 2; }), "a 64-bit ELF (ELFCLASS64)");
  add("bad_class", with([](ElfBuilder& b) { b.ident_class = 7; }), "not a 32-bit ELF (EI_CLASS 7)");
  add("big_endian", with([](ElfBuilder& b) { b.ident_data = 2; }),
      "not a little-endian ELF (EI_DATA 2)");
  add("shared_object", with([](ElfBuilder& b) { b.type = 3; }),
      "not an executable ELF (e_type 3, want 2 ET_EXEC)");
  add("x86_64_machine", with([](ElfBuilder& b) { b.machine = 62; }),
      "not an i386 ELF (e_machine 62, want 3 EM_386)");
  add("bad_version", with([](ElfBuilder& b) { b.version = 0; }), "unknown ELF version 0");

  // Program headers.
  add("no_phdrs", with([](ElfBuilder& b) { b.phdrs.clear(); }), "no program headers (e_phnum 0)");
  add("bad_phentsize", with([](ElfBuilder& b) { b.phentsize = 40; }),
      "bad program header size e_phentsize 40 (want 32)");
  add("phdrs_past_eof", with([](ElfBuilder& b) { b.phoff = 0x7ffffff0; }),
      "truncated: program headers at e_phoff 0x7ffffff0 (1 x 32 bytes) run past the end");
  {
    std::vector<uint8_t> f = good;
    f[44] = 0xff;  // e_phnum 65535
    f[45] = 0xff;
    add("huge_phnum", f, "(65535 x 32 bytes) run past the end of the file (4098 bytes)");
  }
  add("filesz_over_memsz", with([](ElfBuilder& b) { b.phdrs[0].memsz = 1; }),
      "segment 0: p_filesz 0x2 > p_memsz 0x1");
  add("segment_past_eof", with([](ElfBuilder& b) { b.phdrs[0].offset = 0x100000; }),
      "truncated: segment 0: file bytes [0x100000, 0x100002) run past the end of the file");
  {
    std::vector<uint8_t> f = good;
    f.resize(0x1001);
    add("truncated_segment", f, "truncated: segment 0: file bytes [0x1000, 0x1002)");
  }
  add("paddr_overflow", with([](ElfBuilder& b) {
        b.phdrs[0].paddr = 0xfffff000;
        b.phdrs[0].memsz = 0x2000;
      }),
      "segment 0: p_paddr 0xfffff000 + p_memsz 0x2000 overflows 32 bits");
  add("no_load_segment", with([](ElfBuilder& b) { b.phdrs[0].type = 4; }),
      "no loadable segment (PT_LOAD with p_memsz > 0)");

  // The multiboot header.
  add("no_multiboot", with([](ElfBuilder& b) { b.with_multiboot = false; }),
      "no multiboot header (magic 0x1BADB002) in the first 8 KiB");
  add("multiboot_after_8k", with([](ElfBuilder& b) {
        b.multiboot_offset = 0x2000;
        b.size = 0x3000;
      }),
      "no multiboot header (magic 0x1BADB002) in the first 8 KiB");
  add("bad_checksum", with([](ElfBuilder& b) { b.bad_checksum = true; }),
      "multiboot magic 0x1BADB002 at file offset 0x100 but its checksum is wrong");
  add("video_mode", with([](ElfBuilder& b) { b.multiboot_flags = 4; }),
      "multiboot header at file offset 0x100: asks for a video mode (flags bit 2)");
  add("aout_kludge", with([](ElfBuilder& b) { b.multiboot_flags = 0x10000; }),
      "uses the a.out address fields (flags bit 16)");
  add("unknown_required_flag", with([](ElfBuilder& b) { b.multiboot_flags = 0x8; }),
      "requires unknown features (flags 0x8)");

  // Placement in guest memory (-m 32: RAM is [0, 32 MiB), the boot info at its top).
  add("memsz_over_ram", with([](ElfBuilder& b) {
        b.phdrs[0].paddr = 0x100000;
        b.phdrs[0].memsz = 64u << 20;
      }),
      "p_memsz 0x4000000 is larger than guest RAM (32 MiB)", {"-m", "32"});
  add("outside_ram", with([](ElfBuilder& b) {
        b.phdrs[0].paddr = 0x4000000;
        b.entry = 0x4000000;
      }),
      "outside guest RAM below 4 GiB", {"-m", "32"});
  add("over_vga_hole", with([](ElfBuilder& b) {
        b.phdrs[0].paddr = 0xb8000;
        b.entry = 0xb8000;
      }),
      "overlaps the reserved VGA/BIOS hole", {"-m", "32"});
  add("over_boot_info", with([](ElfBuilder& b) {
        b.phdrs[0].paddr = 0x1ffe000;
        b.entry = 0x1ffe000;
      }),
      "overlaps the multiboot info area", {"-m", "32"});
  add("overlapping_segments", with([](ElfBuilder& b) {
        b.phdrs.push_back(b.phdrs[0]);
        b.phdrs[1].paddr = 0x401000;
      }),
      "segments 0 and 1 overlap at 0x401000");
  add("entry_outside_segments", with([](ElfBuilder& b) { b.entry = 0x500000; }),
      "entry point e_entry 0x500000 is outside every loaded segment");
  return k;
}

}  // namespace virt::run::testing
