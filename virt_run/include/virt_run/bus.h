// Bus: address ranges (ports or MMIO) mapped to devices, with QEMU's answer for the rest.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "virt/result.h"
#include "virt_run/device.h"

namespace virt::run {

// Built before the vCPUs run (Insert is not thread-safe), then read from every vCPU thread.
// An access nobody claims reads all-ones and drops writes, as on QEMU's PC, and is counted.
class Bus {
 public:
  struct Counters {
    uint64_t unclaimed_reads = 0;
    uint64_t unclaimed_writes = 0;
  };

  // Claims [base, base + size) for `device` (not owned; it must outlive the bus).
  // kInvalidArgument for an empty or wrapping range, kOverlap naming both devices.
  Status Insert(uint64_t base, uint64_t size, Device* device, std::string name);

  // A read of data.size() bytes at `address`: the device covering `address` answers for the
  // bytes inside its range; bytes past its end, or all bytes when nobody covers `address`, read
  // 0xff. Returns the device's error, if any.
  Status Read(uint64_t address, std::span<uint8_t> data);
  // A write: the device covering `address` gets the bytes inside its range; the rest is dropped.
  Status Write(uint64_t address, std::span<const uint8_t> data);

  // The name of the device claiming `address`, for messages and tests.
  std::optional<std::string> Claimant(uint64_t address) const;

  Counters counters() const {
    return {unclaimed_reads_.load(std::memory_order_relaxed),
            unclaimed_writes_.load(std::memory_order_relaxed)};
  }

 private:
  struct Entry {
    uint64_t base;
    uint64_t size;
    Device* device;
    std::string name;
  };
  const Entry* Find(uint64_t address) const;

  std::vector<Entry> entries_;  // sorted by base, non-overlapping
  std::atomic<uint64_t> unclaimed_reads_{0};
  std::atomic<uint64_t> unclaimed_writes_{0};
};

}  // namespace virt::run
