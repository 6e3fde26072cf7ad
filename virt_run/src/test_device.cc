// TestDevice: the byte-lane latch and the no-op flush port.
#include "virt_run/test_device.h"

namespace virt::run {

Status TestDevice::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t lane = offset + i;
    data[i] = lane < 4 ? static_cast<uint8_t>(latch_ >> (8 * lane)) : 0xFF;
  }
  return Ok();
}

Status TestDevice::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t lane = offset + i;
    if (lane >= 4) continue;  // the flush port
    latch_ = (latch_ & ~(0xFFu << (8 * lane))) | (uint32_t{data[i]} << (8 * lane));
  }
  return Ok();
}

}  // namespace virt::run
