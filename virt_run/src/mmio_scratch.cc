// MmioScratch: a locked byte buffer (the bus keeps accesses inside it).
#include "virt_run/mmio_scratch.h"

#include <cstring>

namespace virt::run {

Status MmioScratch::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  std::memcpy(data.data(), bytes_.data() + offset, data.size());
  return Ok();
}

Status MmioScratch::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  std::memcpy(bytes_.data() + offset, data.data(), data.size());
  return Ok();
}

}  // namespace virt::run
