// The kernel loader: a multiboot ELF32 file checked against the guest layout, then copied in.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "virt_run/checked.h"
#include "virt_run/elf32.h"
#include "virt_run/guest_layout.h"
#include "virt_run/multiboot_header.h"

namespace virt::run {

// A kernel that passed every check: what LoadKernel copies and where the vCPU starts.
struct KernelImage {
  uint32_t entry = 0;
  MultibootHeader header;
  std::vector<ElfSegment> segments;  // sorted by paddr, non-overlapping, inside low RAM
  AddressRange image;                // lowest paddr .. highest paddr + memsz
};

// Validates `file` completely without touching guest memory: the ELF32 headers (ParseElf32),
// the multiboot header (FindMultibootHeader), then each segment against the guest: p_memsz
// larger than all RAM, outside low RAM, over the legacy hole [0xa0000, 0x100000), over
// `boot_info` (the area BuildBootInfo placed), over another segment; and an entry point
// outside every segment. Each failure has its own message.
Checked<KernelImage> ParseKernel(std::span<const uint8_t> file, const GuestLayout& layout,
                                 const AddressRange& boot_info);

// Copies each segment's file bytes to low RAM (`low_ram` is guest physical [0, size)) and
// zeroes the rest of its p_memsz, unless `zero_filled` says the memory is known zero (fresh
// anonymous pages: zeroing a 12 MiB bss would only fault every page in). `image` must come
// from ParseKernel on this `file` and a layout whose low RAM `low_ram` covers.
void LoadKernel(const KernelImage& image, std::span<const uint8_t> file,
                std::span<uint8_t> low_ram, bool zero_filled);

}  // namespace virt::run
