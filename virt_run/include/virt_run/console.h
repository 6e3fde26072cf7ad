// Console: the guest's serial output, passed byte for byte to a stdio stream.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <span>

namespace virt::run {

// Thread-safe. Bytes go out exactly as the guest wrote them (kvm-unit-tests itself sends
// "\r\n" for each "\n", as QEMU's serial passes it on); the stream is flushed at each '\n'
// so that a harness reading a pipe sees whole lines as they come.
class Console {
 public:
  explicit Console(std::FILE* out) : out_(out) {}

  void Write(std::span<const uint8_t> bytes);
  void Flush();

  uint64_t bytes() const;
  // Whether nothing was written or the last byte was '\n' (a report printed after the console
  // output then starts on its own line).
  bool at_line_start() const;

 private:
  mutable std::mutex mu_;
  std::FILE* out_;
  uint64_t bytes_ = 0;
  bool at_line_start_ = true;
};

}  // namespace virt::run
