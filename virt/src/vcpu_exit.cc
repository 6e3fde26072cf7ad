// Names of VcpuExit alternatives for logs and test messages.
#include "virt/vcpu_exit.h"

namespace virt {

const char* ExitName(const VcpuExit& exit) {
  static constexpr const char* kNames[] = {"io",       "mmio",           "halt",   "shutdown",
                                           "cancelled", "internal_error", "unknown",
                                           "unsupported_instruction"};
  static_assert(std::size(kNames) == std::variant_size_v<VcpuExit>);
  return kNames[exit.index()];
}

}  // namespace virt
