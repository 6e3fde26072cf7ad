// ParseKernel / LoadKernel: placement checks of a multiboot ELF32 kernel, then the copy.
#include "virt_run/kernel_loader.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace virt::run {
namespace {

std::string Range(const AddressRange& r) { return "[" + Hex(r.begin) + ", " + Hex(r.end) + ")"; }

}  // namespace

Checked<KernelImage> ParseKernel(std::span<const uint8_t> file, const GuestLayout& layout,
                                 const AddressRange& boot_info) {
  auto elf = ParseElf32(file);
  if (!elf) return Reject(elf.error());
  auto header = FindMultibootHeader(file);
  if (!header) return Reject(header.error());

  KernelImage image;
  image.entry = elf->entry;
  image.header = *header;
  image.segments = elf->segments;
  for (const ElfSegment& seg : image.segments) {
    const AddressRange r{seg.paddr, uint64_t{seg.paddr} + seg.mem_size};
    const std::string name = "segment " + std::to_string(seg.index) + " " + Range(r) + ": ";
    if (seg.mem_size > layout.ram_bytes) {
      return Reject(name + "p_memsz " + Hex(seg.mem_size) + " is larger than guest RAM (" +
                    std::to_string(layout.ram_bytes / GuestLayout::kMiB) + " MiB)");
    }
    if (!layout.low.Contains(r)) {
      return Reject(name + "outside guest RAM below 4 GiB " + Range(layout.low) +
                    " (more -m?)");
    }
    if (r.Overlaps(GuestLayout::kLegacyHole)) {
      return Reject(name + "overlaps the reserved VGA/BIOS hole " +
                    Range(GuestLayout::kLegacyHole));
    }
    if (r.Overlaps(boot_info)) {
      return Reject(name + "overlaps the multiboot info area " + Range(boot_info) +
                    " at the top of RAM (more -m?)");
    }
  }
  std::sort(image.segments.begin(), image.segments.end(),
            [](const ElfSegment& a, const ElfSegment& b) { return a.paddr < b.paddr; });
  for (size_t i = 1; i < image.segments.size(); ++i) {
    const ElfSegment& a = image.segments[i - 1];
    const ElfSegment& b = image.segments[i];
    if (uint64_t{a.paddr} + a.mem_size > b.paddr) {
      return Reject("segments " + std::to_string(a.index) + " and " + std::to_string(b.index) +
                    " overlap at " + Hex(b.paddr));
    }
  }
  const ElfSegment& last = image.segments.back();
  image.image = {image.segments.front().paddr, uint64_t{last.paddr} + last.mem_size};
  const bool entry_inside = std::any_of(
      image.segments.begin(), image.segments.end(), [&](const ElfSegment& s) {
        return image.entry >= s.paddr && uint64_t{image.entry} < uint64_t{s.paddr} + s.mem_size;
      });
  if (!entry_inside) {
    return Reject("entry point e_entry " + Hex(image.entry) + " is outside every loaded segment");
  }
  return image;
}

void LoadKernel(const KernelImage& image, std::span<const uint8_t> file,
                std::span<uint8_t> low_ram, bool zero_filled) {
  for (const ElfSegment& seg : image.segments) {
    uint8_t* dst = low_ram.data() + seg.paddr;
    if (seg.file_size > 0) std::memcpy(dst, file.data() + seg.offset, seg.file_size);
    if (!zero_filled) std::memset(dst + seg.file_size, 0, seg.mem_size - seg.file_size);
  }
}

}  // namespace virt::run
