// libFuzzer target: virt-run's BuildBootInfo, ParseKernel and LoadKernel on arbitrary kernel files.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "virt_run/boot_info.h"
#include "virt_run/elf32.h"
#include "virt_run/guest_layout.h"
#include "virt_run/kernel_loader.h"
#include "virt_run/multiboot_header.h"
#include "fuzz_check.h"

namespace {

using namespace virt::run;

constexpr size_t kPrefix = 6;
constexpr uint64_t kPage = 4096;

uint32_t Le32(std::span<const uint8_t> b, uint64_t at) {
  FUZZ_CHECK(at + 4 <= b.size());
  return LoadLe32(b.data() + at);
}
bool Inside(const AddressRange& outer, uint64_t begin, uint64_t size) {
  return outer.Contains({begin, begin + size});
}

void CheckBootInfo(const BootInfo& boot, const GuestLayout& layout, const std::string& cmdline,
                   const std::optional<BootModule>& module) {
  const AddressRange& area = boot.area;
  FUZZ_CHECK(area.begin % kPage == 0 && area.end == layout.low.end);
  FUZZ_CHECK(area.begin >= GuestLayout::kMiB && !area.Overlaps(GuestLayout::kLegacyHole));
  FUZZ_CHECK(boot.bytes.size() == area.size());
  FUZZ_CHECK(Inside(area, boot.info_address, multiboot::kInfoSize));
  FUZZ_CHECK(Inside(area, boot.gdt_address, uint64_t{boot.gdt_limit} + 1));
  FUZZ_CHECK(Inside(area, boot.tss_address, uint64_t{boot.tss_limit} + 1));
  FUZZ_CHECK(Inside(area, boot.mmap_address, boot.mmap_length));
  FUZZ_CHECK(Inside(area, boot.cmdline_address, cmdline.size() + 1));
  const std::span<const uint8_t> b(boot.bytes);
  const uint64_t cmd = boot.cmdline_address - area.begin;
  FUZZ_CHECK(std::memcmp(b.data() + cmd, cmdline.data(), cmdline.size()) == 0);
  FUZZ_CHECK(b[cmd + cmdline.size()] == 0);
  FUZZ_CHECK(module.has_value() == boot.module.has_value());
  if (module) {
    FUZZ_CHECK(area.Contains(*boot.module) && boot.module->begin % kPage == 0);
    FUZZ_CHECK(boot.module->size() == module->bytes.size());
    FUZZ_CHECK(module->bytes.empty() ||
               std::memcmp(b.data() + (boot.module->begin - area.begin), module->bytes.data(),
                           module->bytes.size()) == 0);
  }
  // mem_upper: KiB of RAM from 1 MiB that stops below the area.
  FUZZ_CHECK(GuestLayout::kMiB + uint64_t{boot.mem_upper_kib} * 1024 <= area.begin);
  // The info block says what the struct says.
  const uint64_t info = boot.info_address - area.begin;
  FUZZ_CHECK(Le32(b, info + 8) == boot.mem_upper_kib);
  FUZZ_CHECK(Le32(b, info + 16) == boot.cmdline_address);
  FUZZ_CHECK(Le32(b, info + 20) == (module ? 1u : 0u));
  FUZZ_CHECK(Le32(b, info + 44) == boot.mmap_length && Le32(b, info + 48) == boot.mmap_address);
  // The memory map: sorted, disjoint entries; no available byte in the hole or the area.
  FUZZ_CHECK(boot.mmap_length % multiboot::kMmapEntrySize == 0);
  uint64_t previous_end = 0;
  for (uint64_t at = boot.mmap_address - area.begin;
       at < boot.mmap_address - area.begin + boot.mmap_length; at += multiboot::kMmapEntrySize) {
    FUZZ_CHECK(Le32(b, at) == multiboot::kMmapEntrySize - 4);
    const uint64_t base = Le32(b, at + 4) | (uint64_t{Le32(b, at + 8)} << 32);
    const uint64_t length = Le32(b, at + 12) | (uint64_t{Le32(b, at + 16)} << 32);
    const uint32_t type = Le32(b, at + 20);
    FUZZ_CHECK(base >= previous_end && base + length >= base);
    previous_end = base + length;
    if (type == multiboot::kMemoryAvailable) {
      const AddressRange r{base, base + length};
      FUZZ_CHECK(!r.Overlaps(GuestLayout::kLegacyHole) && !r.Overlaps(area));
      FUZZ_CHECK(layout.low.Contains(r) || layout.high.Contains(r));
    }
  }
}

void CheckKernel(const KernelImage& k, std::span<const uint8_t> file, const GuestLayout& layout,
                 const AddressRange& boot_area) {
  FUZZ_CHECK(!k.segments.empty());
  bool entry_inside = false;
  for (size_t i = 0; i < k.segments.size(); ++i) {
    const ElfSegment& s = k.segments[i];
    const AddressRange r{s.paddr, uint64_t{s.paddr} + s.mem_size};
    FUZZ_CHECK(s.mem_size > 0 && s.file_size <= s.mem_size);
    FUZZ_CHECK(uint64_t{s.offset} + s.file_size <= file.size());
    FUZZ_CHECK(layout.low.Contains(r) && k.image.Contains(r));
    FUZZ_CHECK(!r.Overlaps(GuestLayout::kLegacyHole) && !r.Overlaps(boot_area));
    if (i > 0) FUZZ_CHECK(uint64_t{k.segments[i - 1].paddr} + k.segments[i - 1].mem_size <= s.paddr);
    entry_inside = entry_inside || (k.entry >= r.begin && k.entry < r.end);
  }
  FUZZ_CHECK(entry_inside);
  FUZZ_CHECK(k.image.begin == k.segments.front().paddr);
  // The multiboot header is aligned, inside the first 8 KiB, checksummed, with accepted flags.
  const uint64_t at = k.header.offset;
  FUZZ_CHECK(at % 4 == 0 && at + 12 <= std::min<uint64_t>(file.size(), multiboot::kSearchBytes));
  FUZZ_CHECK(Le32(file, at) == multiboot::kHeaderMagic && Le32(file, at + 4) == k.header.flags);
  FUZZ_CHECK(uint32_t(Le32(file, at) + Le32(file, at + 4) + Le32(file, at + 8)) == 0);
  FUZZ_CHECK((k.header.flags & 0xFFFFu & ~3u) == 0 && (k.header.flags & multiboot::kAoutKludge) == 0);
}

// The command line and module contents: fixed patterns, cut to the lengths the input asks for.
struct Patterns {
  std::string text;
  std::vector<uint8_t> bytes;
  Patterns() : text(255, 'c'), bytes(0x8000) {
    for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7);
  }
};

// Guest low RAM for each -m the target uses, exactly sized so ASan sees a copy past its end.
std::vector<uint8_t>& LowRam(const GuestLayout& layout) {
  static std::vector<uint8_t> rams[3];
  std::vector<uint8_t>& ram = rams[layout.low.size() / GuestLayout::kMiB - 2];
  if (ram.size() != layout.low.size()) {
    ram.assign(layout.low.size(), 0);
    ram.shrink_to_fit();
  }
  return ram;
}

}  // namespace

// Input: [RAM MiB - 2 (mod 3)] [cmdline length] [module length lo, hi] [has module]
// [bit 0: LoadKernel's zero_filled],
// then the kernel file. The command line and module are patterns of those lengths.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kPrefix) return 0;
  const auto layout = GuestLayout::ForMemory(2 + data[0] % 3);
  FUZZ_CHECK(layout.has_value());
  // Built once: a per-input fill loop would cost a coverage trace call per byte.
  static const Patterns patterns;
  const std::string cmdline = patterns.text.substr(0, data[1]);
  const std::span<const uint8_t> module_bytes(patterns.bytes.data(), data[2] | (data[3] & 0x7F) << 8);
  std::optional<BootModule> module;
  if (data[4] & 1) module = BootModule{module_bytes, "initrd"};
  // An exactly-sized copy of the file: ASan sees any read past its end.
  const std::vector<uint8_t> file(data + kPrefix, data + size);

  auto boot = BuildBootInfo(*layout, cmdline, module);
  const uint64_t wanted = cmdline.size() + (module ? module_bytes.size() + 6 : 0) + 0x400;
  if (!module || module_bytes.size() <= multiboot::kMaxModuleBytes) {
    // Small enough always fits (two pages of slack for the rounding).
    if (wanted + 2 * kPage + GuestLayout::kMiB <= layout->low.end) FUZZ_CHECK(boot.has_value());
  } else {
    FUZZ_CHECK(!boot.has_value());
  }
  if (boot) {
    CheckBootInfo(*boot, *layout, cmdline, module);
  } else {
    FUZZ_CHECK(!boot.error().empty());
  }
  const AddressRange area = boot ? boot->area : AddressRange{layout->low.end - kPage, layout->low.end};

  auto elf = ParseElf32(file);
  if (elf) {
    for (const ElfSegment& s : elf->segments) {
      FUZZ_CHECK(s.mem_size > 0 && s.file_size <= s.mem_size);
      FUZZ_CHECK(uint64_t{s.offset} + s.file_size <= file.size());
      FUZZ_CHECK(uint64_t{s.paddr} + s.mem_size <= (uint64_t{1} << 32));
    }
  }
  auto kernel = ParseKernel(file, *layout, area);
  if (!kernel) {
    // Garbage is a one-line message, never a crash.
    FUZZ_CHECK(!kernel.error().empty() && kernel.error().find('\n') == std::string::npos);
    return 0;
  }
  FUZZ_CHECK(elf.has_value());
  CheckKernel(*kernel, file, *layout, area);

  // Loading writes exactly the segments: file bytes, then zeroes to p_memsz. (Only the first
  // and last page of a large bss are marked and checked: keeps a run fast.)
  std::vector<uint8_t>& ram = LowRam(*layout);
  const auto bss_probes = [&](const ElfSegment& s, auto&& f) {
    const uint64_t begin = uint64_t{s.paddr} + s.file_size, end = uint64_t{s.paddr} + s.mem_size;
    if (end - begin <= 2 * kPage) return f(begin, end);
    f(begin, begin + kPage);
    f(end - kPage, end);
  };
  for (const ElfSegment& s : kernel->segments) {
    std::memset(ram.data() + s.paddr, 0xCC, s.file_size);
    bss_probes(s, [&](uint64_t b, uint64_t e) { std::memset(ram.data() + b, 0xCC, e - b); });
  }
  const bool zero_filled = (data[5] & 1) != 0;
  LoadKernel(*kernel, file, ram, zero_filled);
  for (const ElfSegment& s : kernel->segments) {
    FUZZ_CHECK(s.file_size == 0 ||
               std::memcmp(ram.data() + s.paddr, file.data() + s.offset, s.file_size) == 0);
    bss_probes(s, [&](uint64_t b, uint64_t e) {
      // zero_filled: the loader trusts the memory is zero and leaves the bss alone.
      // (memcmp, not a byte loop: every instrumented comparison costs a trace call.)
      static const std::vector<uint8_t> zeros(2 * kPage, 0), marks(2 * kPage, 0xCC);
      FUZZ_CHECK(std::memcmp(ram.data() + b, (zero_filled ? marks : zeros).data(), e - b) == 0);
    });
  }
  return 0;
}
