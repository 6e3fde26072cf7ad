// VcpuCpuid: the optional per-vCPU CPUID control (Vcpu::cpuid()).
#pragma once

#include "virt/cpuid.h"
#include "virt/result.h"

namespace virt {

// What the guest reads with CPUID on this vCPU. Every vCPU starts with its partition's default
// (the hypervisor's supported set with the APIC ID leaves set to the vCPU index, see
// PartitionCpuid); a VMM that wants another policy replaces it before the vCPU first runs.
// Called while the vCPU is not in Run, from one thread at a time (typically the one that will
// run it, or the VMM's main thread before any vCPU thread starts).
class VcpuCpuid {
 public:
  virtual ~VcpuCpuid() = default;

  // The table the vCPU answers CPUID from now (KVM_GET_CPUID2 ...).
  virtual Result<Cpuid> GetCpuid() = 0;

  // Replaces the whole table (KVM_SET_CPUID2 ...). Only before the vCPU's first Run:
  // kFailedPrecondition afterwards (KVM refuses changes once the vCPU has run). Entries the
  // hypervisor cannot present give kInvalidArgument or its native error; on any error the
  // vCPU keeps the table it had.
  virtual Status SetCpuid(const Cpuid& cpuid) = 0;
};

}  // namespace virt
