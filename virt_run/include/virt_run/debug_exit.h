// DebugExit: QEMU's isa-debug-exit at 0xf4: a write ends the run with the guest's code.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "virt_run/device.h"

namespace virt::run {

// Four ports (iosize 4, as kvm-unit-tests configures QEMU's device). A write of any size at any
// of them calls `on_exit(value)` (kvm-unit-tests writes 4 bytes, its real-mode test 1 byte);
// virt-run then exits with status (value << 1) | 1. Reads answer all-ones.
class DebugExit : public Device {
 public:
  static constexpr uint16_t kBase = 0xF4;
  static constexpr uint16_t kPorts = 4;

  using OnExit = std::function<void(uint32_t code)>;
  explicit DebugExit(OnExit on_exit) : on_exit_(std::move(on_exit)) {}

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  OnExit on_exit_;
};

}  // namespace virt::run
