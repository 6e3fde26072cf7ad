// IsaIrqLines: pc-testdev's interrupt-line ports 0x2000 + n, driving the in-kernel irqchip pins.
#pragma once

#include <cstdint>
#include <span>

#include "virt/irq_lines.h"
#include "virt_run/device.h"

namespace virt::run {

// A write at offset n (n < 24, one port per line) sets line n to !!value through
// IrqLines::SetLevel (KVM_IRQ_LINE); its failure is fatal to the run. Reads return 0.
// Registered only when the partition has irq_lines().
class IsaIrqLines : public Device {
 public:
  static constexpr uint16_t kBase = 0x2000;
  static constexpr uint16_t kPorts = 24;

  explicit IsaIrqLines(IrqLines& lines) : lines_(lines) {}

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  IrqLines& lines_;
};

}  // namespace virt::run
