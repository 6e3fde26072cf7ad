// BuildBootInfo: the multiboot v1 information block, memory map, command line, module, GDT and
// TSS that virt-run places at the top of low RAM.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "virt_run/checked.h"
#include "virt_run/guest_layout.h"

namespace virt::run {

namespace multiboot {
// Information flags virt-run sets.
inline constexpr uint32_t kInfoMemory = 1u << 0;   // mem_lower / mem_upper
inline constexpr uint32_t kInfoCmdline = 1u << 2;
inline constexpr uint32_t kInfoModules = 1u << 3;
inline constexpr uint32_t kInfoMemoryMap = 1u << 6;
inline constexpr uint32_t kInfoSize = 88;          // through the VBE fields, as QEMU writes it
inline constexpr uint32_t kMmapEntrySize = 24;     // size(=20) + base + length + type
inline constexpr uint32_t kModuleEntrySize = 16;   // start, end, cmdline, reserved
inline constexpr uint32_t kMaxModuleBytes = 16384; // kvm-unit-tests' ENV_SIZE
inline constexpr uint32_t kMemoryAvailable = 1, kMemoryReserved = 2;
}  // namespace multiboot

// The module given with --initrd: its bytes and its name (the module's own command line).
struct BootModule {
  std::span<const uint8_t> bytes;
  std::string name;
};

// Where the pieces went (guest physical addresses) and the area's bytes.
struct BootInfo {
  AddressRange area;           // page aligned; ends at the end of low RAM; reported reserved
  uint32_t info_address = 0;   // EBX at entry
  uint32_t gdt_address = 0;    // null, 0x08 flat code, 0x10 flat data, 0x18 busy 32-bit TSS
  uint16_t gdt_limit = 0;
  uint32_t tss_address = 0;
  uint16_t tss_limit = 0;
  uint32_t mmap_address = 0;
  uint32_t mmap_length = 0;
  uint32_t cmdline_address = 0;
  std::optional<AddressRange> module;  // page aligned start
  uint32_t mem_lower_kib = 0;
  uint32_t mem_upper_kib = 0;
  std::vector<uint8_t> bytes;  // area.size() bytes, to copy to area.begin
};

// Lays out the boot information for `layout` at the top of low RAM.
//
// Why there: kvm-unit-tests (lib/x86/setup.c) allocates from its image's end (edata) up to
// mem_upper * 1024, overwrites page 0 with its AP trampoline (lib/x86/smp.c), and its
// real-mode test links at 0x8000 (x86/realmode.lds), over QEMU's 0x9000/0x9500. The area is
// reported reserved in the memory map, so mem_upper (KiB of contiguous RAM from 1 MiB, as
// QEMU's option ROM computes it) stops below it; no kernel segment may overlap it.
//
// The info block has flags mem | cmdline | mods | mmap; the command line is `cmdline` as
// given (virt-run passes "<kernel path> <append>"); mods_count is 1 with `module`, else 0.
// Errors: a module over 16 KiB, or an area that would reach below 1 MiB.
Checked<BootInfo> BuildBootInfo(const GuestLayout& layout, const std::string& cmdline,
                                const std::optional<BootModule>& module);

}  // namespace virt::run
