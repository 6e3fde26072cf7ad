// MemoryRegion: a host buffer mapped into guest physical address space.
#pragma once

#include <cstdint>

namespace virt {

enum class MemoryFlags : uint32_t {
  kNone = 0,
  kReadOnly = 1u << 0,  // guest writes become MMIO write exits
  kDirtyLog = 1u << 1,  // track dirty pages (KVM_MEM_LOG_DIRTY_PAGES)
};

constexpr MemoryFlags operator|(MemoryFlags a, MemoryFlags b) {
  return static_cast<MemoryFlags>(static_cast<uint32_t>(a) | static_cast<uint32_t>(b));
}
constexpr bool HasFlag(MemoryFlags set, MemoryFlags flag) {
  return (static_cast<uint32_t>(set) & static_cast<uint32_t>(flag)) != 0;
}

inline constexpr uint64_t kPageSize = 4096;

// [guest_address, guest_address + size) backed by host memory at host_address. All three must
// be page aligned and size non-zero; the caller keeps the host memory alive while mapped.
struct MemoryRegion {
  uint64_t guest_address = 0;
  uint64_t size = 0;
  void* host_address = nullptr;
  MemoryFlags flags = MemoryFlags::kNone;
};

}  // namespace virt
