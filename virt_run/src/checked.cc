// Formatting helpers shared by the input checks.
#include <cstdio>

#include "virt_run/checked.h"

namespace virt::run {

std::string Hex(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace virt::run
