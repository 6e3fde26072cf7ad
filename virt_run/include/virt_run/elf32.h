// ParseElf32: the ELF32 i386 executable header and PT_LOAD program headers of a kernel file.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "virt_run/checked.h"

namespace virt::run {

// One PT_LOAD program header with p_memsz > 0: file bytes [offset, offset + file_size) go to
// guest physical [paddr, paddr + mem_size), the rest of which is zero (bss).
struct ElfSegment {
  uint32_t index = 0;  // position in the program header table, for messages
  uint32_t offset = 0;
  uint32_t paddr = 0;
  uint32_t file_size = 0;
  uint32_t mem_size = 0;
  bool operator==(const ElfSegment&) const = default;
};

struct ElfImage {
  uint32_t entry = 0;
  std::vector<ElfSegment> segments;  // in program header order
};

// Field offsets and constants of the ELF32 format (System V gABI) used by the parser and by
// tests that craft files.
namespace elf {
inline constexpr uint32_t kEhdrSize = 52;
inline constexpr uint32_t kPhdrSize = 32;
inline constexpr uint8_t kClass32 = 1, kClass64 = 2;
inline constexpr uint8_t kDataLsb = 1;
inline constexpr uint16_t kTypeExec = 2;
inline constexpr uint16_t kMachine386 = 3;
inline constexpr uint32_t kVersionCurrent = 1;
inline constexpr uint32_t kPtLoad = 1;
// Ehdr: e_ident[16], e_type@16, e_machine@18, e_version@20, e_entry@24, e_phoff@28,
// e_shoff@32, e_flags@36, e_ehsize@40, e_phentsize@42, e_phnum@44.
// Phdr: p_type@0, p_offset@4, p_vaddr@8, p_paddr@12, p_filesz@16, p_memsz@20, p_flags@24,
// p_align@28.
}  // namespace elf

// Checks that `file` is a little-endian ELF32 i386 executable whose program header table and
// every PT_LOAD segment's file bytes lie inside the file, with p_filesz <= p_memsz and
// p_paddr + p_memsz within 32 bits. Each failure has its own message ("not an ELF file", "a
// 64-bit ELF", "truncated ..."). Nothing about guest memory is checked here.
Checked<ElfImage> ParseElf32(std::span<const uint8_t> file);

// Little-endian loads from a byte buffer the caller has bounds-checked.
uint16_t LoadLe16(const uint8_t* p);
uint32_t LoadLe32(const uint8_t* p);

}  // namespace virt::run
