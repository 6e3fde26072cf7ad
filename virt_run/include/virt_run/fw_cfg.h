// FwCfg: QEMU's fw_cfg I/O interface (selector 0x510, data 0x511) with the keys test kernels read.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <vector>

#include "virt_run/device.h"

namespace virt::run {

// A 16-bit write at offset 0 selects an item and rewinds it; each byte read at offset 1 returns
// the item's next byte (little-endian values), then 0 past its end; unknown keys read 0.
// Items: 0x00 signature "QEMU", 0x01 ID (1: the traditional interface only), 0x03 RAM_SIZE
// (u64 bytes), 0x05 NB_CPUS (u16; kvm-unit-tests waits for exactly that many CPUs), 0x11
// (u64 0: kvm-unit-tests' FW_CFG_MAX_RAM, "no limit"). Writes to the data port are ignored.
class FwCfg : public Device {
 public:
  static constexpr uint16_t kBase = 0x510;
  static constexpr uint16_t kPorts = 2;
  static constexpr uint16_t kSignature = 0x00, kId = 0x01, kRamSize = 0x03, kNbCpus = 0x05,
                            kMaxRam = 0x11;

  FwCfg(uint16_t cpus, uint64_t ram_bytes);

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::map<uint16_t, std::vector<uint8_t>> items_;  // fixed after construction
  std::mutex mu_;
  uint16_t selected_ = 0;
  size_t position_ = 0;
};

}  // namespace virt::run
