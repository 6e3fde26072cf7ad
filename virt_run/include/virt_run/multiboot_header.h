// FindMultibootHeader: the multiboot v1 header of a kernel file, and the flags virt-run accepts.
#pragma once

#include <cstdint>
#include <span>

#include "virt_run/checked.h"

namespace virt::run {

namespace multiboot {
inline constexpr uint32_t kHeaderMagic = 0x1BADB002;
inline constexpr uint32_t kBootMagic = 0x2BADB002;  // EAX at entry
inline constexpr uint32_t kSearchBytes = 8192;      // the header lies in the file's first 8 KiB
// Header flags (the low 16 bits are requirements a loader must meet or refuse).
inline constexpr uint32_t kPageAlignModules = 1u << 0;
inline constexpr uint32_t kMemoryInfo = 1u << 1;
inline constexpr uint32_t kVideoMode = 1u << 2;
inline constexpr uint32_t kAoutKludge = 1u << 16;  // load from the header's address fields
}  // namespace multiboot

struct MultibootHeader {
  uint32_t offset = 0;  // in the file, 4-byte aligned
  uint32_t flags = 0;
};

// Finds the first 4-byte aligned {magic, flags, checksum} with magic + flags + checksum == 0
// (mod 2^32) in the first 8 KiB of `file`, and checks its flags: bits 0 (page-aligned
// modules, always done) and 1 (memory information, always given) are fine; bit 2 (a video
// mode), bit 16 (the a.out address fields; virt-run loads from the ELF program headers) and
// the other required bits (3-15) are refused. Distinct messages for no magic at all, a magic
// whose checksum is wrong, and each refused flag.
Checked<MultibootHeader> FindMultibootHeader(std::span<const uint8_t> file);

}  // namespace virt::run
