// FindMultibootHeader: scanning the first 8 KiB of a kernel for its multiboot v1 header.
#include "virt_run/multiboot_header.h"

#include <algorithm>
#include <optional>
#include <string>

#include "virt_run/elf32.h"

namespace virt::run {

Checked<MultibootHeader> FindMultibootHeader(std::span<const uint8_t> file) {
  const uint64_t limit = std::min<uint64_t>(file.size(), multiboot::kSearchBytes);
  std::optional<uint64_t> bad_checksum_at;
  for (uint64_t at = 0; at + 12 <= limit; at += 4) {
    const uint8_t* p = file.data() + at;
    if (LoadLe32(p) != multiboot::kHeaderMagic) continue;
    const uint32_t flags = LoadLe32(p + 4);
    if (multiboot::kHeaderMagic + flags + LoadLe32(p + 8) != 0) {
      if (!bad_checksum_at) bad_checksum_at = at;
      continue;
    }
    const std::string where = "multiboot header at file offset " + Hex(at) + ": ";
    if (flags & multiboot::kVideoMode) {
      return Reject(where + "asks for a video mode (flags bit 2), which virt-run cannot set");
    }
    if (flags & multiboot::kAoutKludge) {
      return Reject(where + "uses the a.out address fields (flags bit 16); virt-run loads "
                    "ELF program headers only");
    }
    constexpr uint32_t kKnownRequired = multiboot::kPageAlignModules | multiboot::kMemoryInfo;
    if (const uint32_t unknown = flags & 0xFFFFu & ~kKnownRequired; unknown != 0) {
      return Reject(where + "requires unknown features (flags " + Hex(unknown) + ")");
    }
    return MultibootHeader{static_cast<uint32_t>(at), flags};
  }
  if (bad_checksum_at) {
    return Reject("multiboot magic 0x1BADB002 at file offset " + Hex(*bad_checksum_at) +
                  " but its checksum is wrong (magic + flags + checksum != 0)");
  }
  return Reject("no multiboot header (magic 0x1BADB002) in the first 8 KiB");
}

}  // namespace virt::run
