// PartitionCpuid: the optional partition-level CPUID query (Partition::cpuid()).
#pragma once

#include <cstdint>

#include "virt/cpuid.h"
#include "virt/result.h"

namespace virt {

// What the hypervisor can present to this partition's guests, and what a new vCPU gets.
// Thread-safe.
class PartitionCpuid {
 public:
  virtual ~PartitionCpuid() = default;

  // Every leaf and bit the hypervisor can show a guest (KVM_GET_SUPPORTED_CPUID, read once when
  // the hypervisor was opened ...). A VMM starts from this and hides what it does not want.
  virtual Result<Cpuid> SupportedCpuid() = 0;

  // The table CreateVcpu(index) gives vCPU `index`: SupportedCpuid() with SetApicId(index).
  // kInvalidArgument for an index >= vcpu_count.
  virtual Result<Cpuid> DefaultCpuid(uint32_t index) = 0;
};

}  // namespace virt
