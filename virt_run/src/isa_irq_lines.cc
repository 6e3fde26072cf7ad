// IsaIrqLines: port writes to line levels.
#include "virt_run/isa_irq_lines.h"

#include <algorithm>

namespace virt::run {

Status IsaIrqLines::Read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  return Ok();
}

Status IsaIrqLines::Write(uint64_t offset, std::span<const uint8_t> data) {
  return lines_.SetLevel(static_cast<uint32_t>(offset), LittleEndian(data) != 0);
}

}  // namespace virt::run
