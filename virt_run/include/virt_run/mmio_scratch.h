// MmioScratch: pc-testdev's 64 KiB MMIO buffer at 0xff000000 (every access exits to the VMM).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "virt_run/device.h"

namespace virt::run {

// Plain read/write memory behind MMIO exits, zero at start, so that tests of the hypervisor's
// instruction emulation can check what reached the device.
class MmioScratch : public Device {
 public:
  static constexpr uint64_t kBase = 0xFF000000;
  static constexpr uint64_t kSize = 64 * 1024;

  MmioScratch() : bytes_(kSize, 0) {}

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::mutex mu_;
  std::vector<uint8_t> bytes_;
};

}  // namespace virt::run
