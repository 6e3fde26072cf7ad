// PciConfig: PCI configuration mechanism #1 (0xcf8 address, 0xcfc data) on a bus with no devices.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>

#include "virt_run/device.h"

namespace virt::run {

// 0xcf8-0xcfb: the CONFIG_ADDRESS register, read back as written (byte lanes, any size).
// 0xcfc-0xcff: CONFIG_DATA: with no device on any bus every read is all-ones (what a probe of
// an empty slot sees) and writes are dropped.
class PciConfig : public Device {
 public:
  static constexpr uint16_t kBase = 0xCF8;
  static constexpr uint16_t kPorts = 8;

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

  uint32_t address() const;

 private:
  mutable std::mutex mu_;
  uint32_t address_ = 0;
};

}  // namespace virt::run
