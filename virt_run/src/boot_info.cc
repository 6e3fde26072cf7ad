// BuildBootInfo: byte layout of the multiboot info area (info, GDT, TSS, mmap, strings, module).
#include "virt_run/boot_info.h"

#include <cstring>

#include "virt/memory_region.h"

namespace virt::run {
namespace {

constexpr uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

void Store32(std::vector<uint8_t>& b, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void Store64(std::vector<uint8_t>& b, uint64_t at, uint64_t v) {
  Store32(b, at, static_cast<uint32_t>(v));
  Store32(b, at + 4, static_cast<uint32_t>(v >> 32));
}

// A segment descriptor (Intel SDM vol. 3 3.4.5): base, 20-bit limit, access byte, flags nibble.
uint64_t Descriptor(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags) {
  return (uint64_t{limit} & 0xFFFF) | ((uint64_t{base} & 0xFFFFFF) << 16) |
         (uint64_t{access} << 40) | ((uint64_t{limit} >> 16 & 0xF) << 48) |
         (uint64_t{flags} << 52) | (uint64_t{base >> 24} << 56);
}

struct MmapEntry {
  uint64_t base, length;
  uint32_t type;
};

// Offsets inside the area's first page.
constexpr uint32_t kInfoOffset = 0;
constexpr uint32_t kGdtOffset = 0x60;
constexpr uint32_t kGdtEntries = 4;
constexpr uint32_t kTssOffset = kGdtOffset + kGdtEntries * 8;  // 0x80
constexpr uint32_t kTssSize = 104;                             // a 32-bit TSS
constexpr uint32_t kMmapOffset = 0x100;
constexpr uint32_t kMaxMmapEntries = 5;

}  // namespace

Checked<BootInfo> BuildBootInfo(const GuestLayout& layout, const std::string& cmdline,
                                const std::optional<BootModule>& module) {
  using namespace multiboot;
  if (module && module->bytes.size() > kMaxModuleBytes) {
    return Reject("--initrd " + module->name + ": " + std::to_string(module->bytes.size()) +
                  " bytes; the environment module may hold at most " +
                  std::to_string(kMaxModuleBytes));
  }
  const uint64_t module_entry = kMmapOffset + kMaxMmapEntries * kMmapEntrySize;
  const uint64_t cmdline_at = module_entry + kModuleEntrySize;
  const uint64_t module_name_at = cmdline_at + cmdline.size() + 1;
  const uint64_t strings_end = module_name_at + (module ? module->name.size() : 0) + 1;
  const uint64_t module_at = AlignUp(strings_end, kPageSize);
  const uint64_t area_size =
      AlignUp(module_at + (module ? module->bytes.size() : 0), kPageSize);
  if (area_size + GuestLayout::kMiB > layout.low.end) {
    return Reject("the boot information (" + std::to_string(area_size) +
                  " bytes with the command line and module) does not fit in guest RAM above "
                  "1 MiB (-m too small or --append too long)");
  }
  BootInfo info;
  info.area = {layout.low.end - area_size, layout.low.end};
  const uint64_t base = info.area.begin;
  info.bytes.assign(area_size, 0);
  std::vector<uint8_t>& b = info.bytes;

  // The memory map: the legacy hole and this area reserved, all other RAM available.
  MmapEntry entries[kMaxMmapEntries];
  uint32_t n = 0;
  entries[n++] = {0, GuestLayout::kLegacyHole.begin, kMemoryAvailable};
  entries[n++] = {GuestLayout::kLegacyHole.begin, GuestLayout::kLegacyHole.size(),
                  kMemoryReserved};
  entries[n++] = {GuestLayout::kLegacyHole.end, base - GuestLayout::kLegacyHole.end,
                  kMemoryAvailable};
  entries[n++] = {base, area_size, kMemoryReserved};
  if (layout.high.size() > 0) entries[n++] = {layout.high.begin, layout.high.size(),
                                              kMemoryAvailable};
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t at = kMmapOffset + i * kMmapEntrySize;
    Store32(b, at, kMmapEntrySize - 4);
    Store64(b, at + 4, entries[i].base);
    Store64(b, at + 12, entries[i].length);
    Store32(b, at + 20, entries[i].type);
  }
  info.mmap_address = static_cast<uint32_t>(base + kMmapOffset);
  info.mmap_length = n * kMmapEntrySize;

  std::memcpy(b.data() + cmdline_at, cmdline.data(), cmdline.size());
  info.cmdline_address = static_cast<uint32_t>(base + cmdline_at);
  if (module) {
    std::memcpy(b.data() + module_name_at, module->name.data(), module->name.size());
    if (!module->bytes.empty()) {
      std::memcpy(b.data() + module_at, module->bytes.data(), module->bytes.size());
    }
    info.module = AddressRange{base + module_at, base + module_at + module->bytes.size()};
    Store32(b, module_entry, static_cast<uint32_t>(info.module->begin));
    Store32(b, module_entry + 4, static_cast<uint32_t>(info.module->end));
    Store32(b, module_entry + 8, static_cast<uint32_t>(base + module_name_at));
  }

  info.mem_lower_kib = static_cast<uint32_t>(GuestLayout::kLegacyHole.begin / 1024);
  info.mem_upper_kib = static_cast<uint32_t>((base - GuestLayout::kMiB) / 1024);
  info.info_address = static_cast<uint32_t>(base + kInfoOffset);
  Store32(b, kInfoOffset + 0, kInfoMemory | kInfoCmdline | kInfoModules | kInfoMemoryMap);
  Store32(b, kInfoOffset + 4, info.mem_lower_kib);
  Store32(b, kInfoOffset + 8, info.mem_upper_kib);
  Store32(b, kInfoOffset + 16, info.cmdline_address);
  Store32(b, kInfoOffset + 20, module ? 1 : 0);
  Store32(b, kInfoOffset + 24, static_cast<uint32_t>(base + module_entry));
  Store32(b, kInfoOffset + 44, info.mmap_length);
  Store32(b, kInfoOffset + 48, info.mmap_address);

  // The GDT the entry state's selectors name, and the busy TSS that TR holds.
  info.gdt_address = static_cast<uint32_t>(base + kGdtOffset);
  info.gdt_limit = kGdtEntries * 8 - 1;
  info.tss_address = static_cast<uint32_t>(base + kTssOffset);
  info.tss_limit = kTssSize - 1;
  Store64(b, kGdtOffset + 0x08, Descriptor(0, 0xFFFFF, 0x9B, 0xC));  // code, execute/read
  Store64(b, kGdtOffset + 0x10, Descriptor(0, 0xFFFFF, 0x93, 0xC));  // data, read/write
  Store64(b, kGdtOffset + 0x18, Descriptor(info.tss_address, info.tss_limit, 0x8B, 0x0));
  // TSS: SS0 = 0x10, and the I/O map base at the TSS limit (no I/O permission bitmap).
  Store32(b, kTssOffset + 8, 0x10);
  Store32(b, kTssOffset + 100, kTssSize << 16);
  return info;
}

}  // namespace virt::run
