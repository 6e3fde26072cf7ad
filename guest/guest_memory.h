// GuestMemory: an anonymous, page-aligned, zeroed host buffer that backs guest RAM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "virt/result.h"

namespace virt::guest {

class GuestMemory {
 public:
  // `size` bytes of zeroed, page-aligned read/write memory; size a non-zero multiple of 4 KiB.
  // POSIX: mmap(PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS) (errno on failure).
  // Windows: VirtualAlloc(MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE) (HRESULT on failure).
  static Result<GuestMemory> Allocate(size_t size);

  GuestMemory(GuestMemory&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  GuestMemory& operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
      Free(data_, size_);
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory() { Free(data_, size_); }

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() const { return {data_, size_}; }

 private:
  GuestMemory(uint8_t* data, size_t size) : data_(data), size_(size) {}

  // munmap / VirtualFree(MEM_RELEASE); nothing for null.
  static void Free(uint8_t* data, size_t size) noexcept;

  uint8_t* data_;
  size_t size_;
};

}  // namespace virt::guest
