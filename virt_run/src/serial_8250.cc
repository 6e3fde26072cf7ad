// Serial8250: register file of a transmit-only 16550 (THR/DLL, IER/DLM, IIR/FCR, LCR, MCR, LSR,
// MSR, SCR).
#include "virt_run/serial_8250.h"

namespace virt::run {
namespace {

enum Register : uint64_t { kData = 0, kIer = 1, kIir = 2, kLcr = 3, kMcr = 4, kLsr = 5,
                           kMsr = 6, kScr = 7 };
constexpr uint8_t kMcrLoopback = 0x10;

}  // namespace

Status Serial8250::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) data[i] = ReadRegister(offset + i);
  return Ok();
}

Status Serial8250::Write(uint64_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    bool out = false;
    {
      std::lock_guard lock(mu_);
      out = offset + i == kData && !dlab() && (mcr_ & kMcrLoopback) == 0;
      if (!out) WriteRegister(offset + i, data[i]);
    }
    // Outside the lock: the console has its own, and a slow stdout must not hold up LSR polls.
    if (out && output_) output_(data[i]);
  }
  return Ok();
}

uint16_t Serial8250::divisor() const {
  std::lock_guard lock(mu_);
  return static_cast<uint16_t>(dll_ | (dlm_ << 8));
}

uint8_t Serial8250::ReadRegister(uint64_t reg) {
  switch (reg) {
    case kData: return dlab() ? dll_ : 0;  // RBR: nothing is ever received
    case kIer: return dlab() ? dlm_ : ier_;
    case kIir: return (fcr_ & 1) ? 0xC1 : 0x01;  // no interrupt pending (FIFOs on: bits 7:6)
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: return kLsrIdle;
    case kMsr:
      if (mcr_ & kMcrLoopback) {
        // Loopback wires RTS -> CTS, DTR -> DSR, OUT1 -> RI, OUT2 -> DCD.
        return static_cast<uint8_t>(((mcr_ & 0x02) << 3) | ((mcr_ & 0x01) << 5) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return 0xB0;  // DCD | DSR | CTS: a terminal is attached
    case kScr: return scr_;
    default: return 0xFF;
  }
}

void Serial8250::WriteRegister(uint64_t reg, uint8_t value) {
  switch (reg) {
    case kData:
      if (dlab()) dll_ = value;  // else: THR in loopback, dropped
      break;
    case kIer:
      if (dlab()) {
        dlm_ = value;
      } else {
        ier_ = value & 0x0F;
      }
      break;
    case kIir: fcr_ = value & 0xC9; break;  // FCR; the reset bits self-clear
    case kLcr: lcr_ = value; break;
    case kMcr: mcr_ = value & 0x1F; break;
    case kScr: scr_ = value; break;
    default: break;  // LSR and MSR are read-only
  }
}

}  // namespace virt::run
