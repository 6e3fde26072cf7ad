// TestDevice: QEMU pc-testdev's ports 0xe0-0xe7: a 32-bit latch and the "flush page" port.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>

#include "virt_run/device.h"

namespace virt::run {

// 0xe0-0xe3: a 32-bit register read and written through byte lanes, any size at any offset
// (an OUTB to 0xe1 sets bits 15:8; an INL from 0xe0 returns all four). 0xe4-0xe7: writes (a
// guest-physical address to flush from QEMU's translation cache) are a no-op here; reads
// return all-ones.
class TestDevice : public Device {
 public:
  static constexpr uint16_t kBase = 0xE0;
  static constexpr uint16_t kPorts = 8;

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::mutex mu_;
  uint32_t latch_ = 0;
};

}  // namespace virt::run
