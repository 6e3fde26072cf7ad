// Device: the two calls a bus makes for a guest access inside a device's range.
#pragma once

#include <cstdint>
#include <span>

#include "virt/result.h"

namespace virt::run {

// A port or MMIO device. Offsets are from the start of the range it is registered on; the bus
// passes only the bytes inside that range (1, 2, 4 or 8 of them), little-endian. Calls come
// from any vCPU thread at once: a device with state guards it itself. An error is fatal to the
// run (a hypervisor call the device made failed): virt-run stops with status 8.
class Device {
 public:
  virtual ~Device() = default;

  // Fills `data` with what the guest reads at `offset`.
  virtual Status Read(uint64_t offset, std::span<uint8_t> data) = 0;
  // Takes what the guest writes at `offset`.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// `data` as a little-endian integer (up to 8 bytes).
inline uint64_t LittleEndian(std::span<const uint8_t> data) {
  uint64_t v = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) v |= uint64_t{data[i]} << (8 * i);
  return v;
}

// Stores the low data.size() bytes of `value` little-endian.
inline void StoreLittleEndian(uint64_t value, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) data[i] = i < 8 ? static_cast<uint8_t>(value >> (8 * i)) : 0;
}

}  // namespace virt::run
