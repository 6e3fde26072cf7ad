// GuestRam: the host memory behind guest RAM, reserved lazily so start-up costs no page faults.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "virt/memory_region.h"
#include "virt/result.h"
#include "virt_run/guest_layout.h"

namespace virt::run {

// One host mapping of layout.ram_bytes: low RAM first, then the part that the guest sees from
// 4 GiB. Pages are zero and get host memory only when first touched.
class GuestRam {
 public:
  // POSIX: mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE).
  // Windows: VirtualAlloc(MEM_RESERVE | MEM_COMMIT) (committed pages are still zero-filled on
  // first touch).
  static Result<GuestRam> Allocate(const GuestLayout& layout);

  GuestRam(GuestRam&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        layout_(other.layout_) {}
  GuestRam& operator=(GuestRam&& other) noexcept;
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;
  ~GuestRam() { Free(data_, size_); }

  // Guest physical [0, low.end).
  std::span<uint8_t> low() const { return {data_, layout_.low.size()}; }
  // Guest physical [4 GiB, high.end).
  std::span<uint8_t> high() const { return {data_ + layout_.low.size(), layout_.high.size()}; }

  // The regions to pass to Partition::MapMemory (one or two).
  std::vector<MemoryRegion> Regions() const;

 private:
  GuestRam(uint8_t* data, size_t size, const GuestLayout& layout)
      : data_(data), size_(size), layout_(layout) {}
  static void Free(uint8_t* data, size_t size) noexcept;

  uint8_t* data_;
  size_t size_;
  GuestLayout layout_;
};

static_assert(!std::is_copy_constructible_v<GuestRam>);
static_assert(std::is_nothrow_destructible_v<GuestRam>);

}  // namespace virt::run
