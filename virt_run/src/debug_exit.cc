// DebugExit: the guest's verdict port.
#include "virt_run/debug_exit.h"

#include <algorithm>

namespace virt::run {

Status DebugExit::Read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0xFF);
  return Ok();
}

Status DebugExit::Write(uint64_t, std::span<const uint8_t> data) {
  if (on_exit_) on_exit_(static_cast<uint32_t>(LittleEndian(data)));
  return Ok();
}

}  // namespace virt::run
