// ElfBuilder: crafts multiboot ELF32 kernel files byte by byte for the loader tests (good ones
// and every kind of bad one).
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace virt::run::testing {

struct Phdr {
  uint32_t type = 1;  // PT_LOAD
  uint32_t offset = 0, vaddr = 0, paddr = 0, filesz = 0, memsz = 0;
  uint32_t flags = 7, align = 0x1000;
};

// A little-endian ELF32 i386 executable: the 52-byte header, the program headers right after
// it, a multiboot header at `multiboot_offset` (flags 0 unless changed) and whatever payload
// bytes the test puts at given offsets. Every field can be overwritten before Build().
class ElfBuilder {
 public:
  ElfBuilder() {
    ident_class = 1;
    ident_data = 1;
  }

  uint8_t ident_class, ident_data;
  uint16_t type = 2, machine = 3, phentsize = 32;
  uint32_t version = 1, entry = 0x400000;
  uint32_t phoff = 52;
  std::vector<Phdr> phdrs;
  bool with_multiboot = true;
  uint32_t multiboot_offset = 0x100;
  uint32_t multiboot_flags = 0;
  bool bad_checksum = false;
  uint32_t size = 0x1000;  // file size (grown to fit payloads)
  struct Payload {
    uint32_t offset;
    std::vector<uint8_t> bytes;
  };
  std::vector<Payload> payloads;

  // A typical kernel: code at file 0x1000 loaded at 0x400000 (`code` bytes), bss to `memsz`.
  static ElfBuilder Typical(std::vector<uint8_t> code, uint32_t memsz) {
    ElfBuilder b;
    b.phdrs.push_back({1, 0x1000, 0x400000, 0x400000, static_cast<uint32_t>(code.size()), memsz});
    b.payloads.push_back({0x1000, std::move(code)});
    b.size = 0x1000 + static_cast<uint32_t>(b.payloads.back().bytes.size());
    return b;
  }

  std::vector<uint8_t> Build() const {
    uint32_t total = size;
    for (const Payload& p : payloads) {
      total = std::max<uint32_t>(total, p.offset + static_cast<uint32_t>(p.bytes.size()));
    }
    std::vector<uint8_t> f(total, 0);
    auto put8 = [&](uint32_t at, uint8_t v) { if (at < f.size()) f[at] = v; };
    auto put16 = [&](uint32_t at, uint16_t v) { put8(at, v & 0xff); put8(at + 1, v >> 8); };
    auto put32 = [&](uint32_t at, uint32_t v) {
      for (int i = 0; i < 4; ++i) put8(at + i, static_cast<uint8_t>(v >> (8 * i)));
    };
    put8(0, 0x7f); put8(1, 'E'); put8(2, 'L'); put8(3, 'F');
    put8(4, ident_class); put8(5, ident_data); put8(6, 1);
    put16(16, type); put16(18, machine); put32(20, version); put32(24, entry);
    put32(28, phoff); put16(40, 52); put16(42, phentsize);
    put16(44, static_cast<uint16_t>(phdrs.size()));
    for (size_t i = 0; i < phdrs.size(); ++i) {
      const uint32_t at = phoff + static_cast<uint32_t>(i) * 32;
      const Phdr& p = phdrs[i];
      put32(at, p.type); put32(at + 4, p.offset); put32(at + 8, p.vaddr); put32(at + 12, p.paddr);
      put32(at + 16, p.filesz); put32(at + 20, p.memsz); put32(at + 24, p.flags);
      put32(at + 28, p.align);
    }
    for (const Payload& p : payloads) std::memcpy(f.data() + p.offset, p.bytes.data(), p.bytes.size());
    if (with_multiboot) {
      const uint32_t magic = 0x1BADB002;
      put32(multiboot_offset, magic);
      put32(multiboot_offset + 4, multiboot_flags);
      put32(multiboot_offset + 8, 0u - (magic + multiboot_flags) + (bad_checksum ? 1 : 0));
    }
    return f;
  }
};

}  // namespace virt::run::testing
