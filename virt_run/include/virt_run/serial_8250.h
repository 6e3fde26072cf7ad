// Serial8250: a transmit-only 8250/16550 UART (COM1) whose output is the guest's console.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "virt_run/device.h"

namespace virt::run {

// Eight byte-wide registers; a wider access is taken byte by byte (as QEMU's serial does).
// THR writes go to `output` unless DLAB (LCR bit 7) is set, when offsets 0 and 1 are the
// divisor latch, or loopback (MCR bit 4) is on. LSR always reads THRE | TEMT (0x60): the
// transmitter is never busy and no input ever arrives. No interrupts are raised.
class Serial8250 : public Device {
 public:
  static constexpr uint16_t kCom1Base = 0x3F8;
  static constexpr uint16_t kPorts = 8;
  static constexpr uint8_t kLsrIdle = 0x60;  // THRE | TEMT

  using Output = std::function<void(uint8_t byte)>;
  explicit Serial8250(Output output) : output_(std::move(output)) {}

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

  // The divisor latch (DLM:DLL), for tests.
  uint16_t divisor() const;

 private:
  uint8_t ReadRegister(uint64_t reg);
  void WriteRegister(uint64_t reg, uint8_t value);
  bool dlab() const { return (lcr_ & 0x80) != 0; }

  Output output_;
  mutable std::mutex mu_;
  uint8_t dll_ = 0x0C, dlm_ = 0;  // 9600 baud, the reset value QEMU uses
  uint8_t ier_ = 0, fcr_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0;
};

}  // namespace virt::run
