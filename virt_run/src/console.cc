// Console: guest output to a stdio stream, flushed per line.
#include "virt_run/console.h"

namespace virt::run {

void Console::Write(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  std::lock_guard lock(mu_);
  std::fwrite(bytes.data(), 1, bytes.size(), out_);
  bytes_ += bytes.size();
  at_line_start_ = bytes.back() == '\n';
  for (uint8_t b : bytes) {
    if (b == '\n') {
      std::fflush(out_);
      break;
    }
  }
}

void Console::Flush() {
  std::lock_guard lock(mu_);
  std::fflush(out_);
}

uint64_t Console::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

bool Console::at_line_start() const {
  std::lock_guard lock(mu_);
  return at_line_start_;
}

}  // namespace virt::run
