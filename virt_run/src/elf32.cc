// ParseElf32: validating an ELF32 i386 executable's headers against the file, field by field.
#include "virt_run/elf32.h"

#include <string>

namespace virt::run {

uint16_t LoadLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

Checked<ElfImage> ParseElf32(std::span<const uint8_t> file) {
  const uint64_t size = file.size();
  if (size < 4 || file[0] != 0x7f || file[1] != 'E' || file[2] != 'L' || file[3] != 'F') {
    return Reject("not an ELF file (no \\x7fELF magic)");
  }
  if (size < 5) return Reject("truncated ELF header: " + std::to_string(size) + " bytes");
  if (file[4] == elf::kClass64) {
    return Reject("a 64-bit ELF (ELFCLASS64): virt-run loads 32-bit multiboot kernels "
                  "(objcopy -O elf32-i386 makes one)");
  }
  if (file[4] != elf::kClass32) {
    return Reject("not a 32-bit ELF (EI_CLASS " + std::to_string(file[4]) + ")");
  }
  if (size < elf::kEhdrSize) {
    return Reject("truncated ELF header: " + std::to_string(size) + " bytes, need " +
                  std::to_string(elf::kEhdrSize));
  }
  const uint8_t* h = file.data();
  if (h[5] != elf::kDataLsb) {
    return Reject("not a little-endian ELF (EI_DATA " + std::to_string(h[5]) + ")");
  }
  if (const uint16_t type = LoadLe16(h + 16); type != elf::kTypeExec) {
    return Reject("not an executable ELF (e_type " + std::to_string(type) + ", want 2 ET_EXEC)");
  }
  if (const uint16_t machine = LoadLe16(h + 18); machine != elf::kMachine386) {
    return Reject("not an i386 ELF (e_machine " + std::to_string(machine) +
                  ", want 3 EM_386)");
  }
  if (const uint32_t version = LoadLe32(h + 20); version != elf::kVersionCurrent) {
    return Reject("unknown ELF version " + std::to_string(version));
  }
  ElfImage image;
  image.entry = LoadLe32(h + 24);
  const uint64_t phoff = LoadLe32(h + 28);
  const uint16_t phentsize = LoadLe16(h + 42);
  const uint64_t phnum = LoadLe16(h + 44);
  if (phnum == 0) return Reject("no program headers (e_phnum 0)");
  if (phentsize != elf::kPhdrSize) {
    return Reject("bad program header size e_phentsize " + std::to_string(phentsize) +
                  " (want 32)");
  }
  // 64-bit sums of 32-bit fields cannot overflow.
  if (phoff + phnum * elf::kPhdrSize > size) {
    return Reject("truncated: program headers at e_phoff " + Hex(phoff) + " (" +
                  std::to_string(phnum) + " x 32 bytes) run past the end of the file (" +
                  std::to_string(size) + " bytes)");
  }
  for (uint32_t i = 0; i < phnum; ++i) {
    const uint8_t* ph = h + phoff + uint64_t{i} * elf::kPhdrSize;
    if (LoadLe32(ph) != elf::kPtLoad) continue;
    ElfSegment seg{i, LoadLe32(ph + 4), LoadLe32(ph + 12), LoadLe32(ph + 16), LoadLe32(ph + 20)};
    const std::string name = "segment " + std::to_string(i) + ": ";
    if (seg.file_size > seg.mem_size) {
      return Reject(name + "p_filesz " + Hex(seg.file_size) + " > p_memsz " +
                    Hex(seg.mem_size));
    }
    if (uint64_t{seg.offset} + seg.file_size > size) {
      return Reject("truncated: " + name + "file bytes [" + Hex(seg.offset) + ", " +
                    Hex(uint64_t{seg.offset} + seg.file_size) +
                    ") run past the end of the file (" + std::to_string(size) + " bytes)");
    }
    if (uint64_t{seg.paddr} + seg.mem_size > (uint64_t{1} << 32)) {
      return Reject(name + "p_paddr " + Hex(seg.paddr) + " + p_memsz " + Hex(seg.mem_size) +
                    " overflows 32 bits");
    }
    if (seg.mem_size == 0) continue;
    image.segments.push_back(seg);
  }
  if (image.segments.empty()) return Reject("no loadable segment (PT_LOAD with p_memsz > 0)");
  return image;
}

}  // namespace virt::run
