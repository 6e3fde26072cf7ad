// GuestMemory: an anonymous, page-aligned host buffer that backs guest RAM (mmap/munmap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "virt/result.h"

namespace virt::guest {

class GuestMemory {
 public:
  // mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS); size a multiple of 4 KiB.
  static Result<GuestMemory> Allocate(size_t size);

  GuestMemory(GuestMemory&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  GuestMemory& operator=(GuestMemory&& other) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() const { return {data_, size_}; }

 private:
  GuestMemory(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_;
  size_t size_;
};

}  // namespace virt::guest
