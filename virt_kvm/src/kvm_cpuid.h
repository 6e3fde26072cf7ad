// Conversions between virt::Cpuid and the kvm_cpuid2 buffers KVM_GET_SUPPORTED_CPUID,
// KVM_GET_CPUID2 and KVM_SET_CPUID2 exchange.
#pragma once

#include <cstdint>
#include <vector>

#include "virt/cpuid.h"
#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {

// KVM_MAX_CPUID_ENTRIES: KVM refuses KVM_SET_CPUID2 with more entries (E2BIG).
inline constexpr uint32_t kMaxCpuidEntries = 256;

// A kvm_cpuid2 header followed by `n` zeroed entries; nent = n.
std::vector<uint8_t> NewCpuidBuffer(uint32_t n);

// The entries of a kvm_cpuid2. KVM_CPUID_FLAG_SIGNIFCANT_INDEX becomes kCpuidIndexSignificant;
// the other KVM flags (stateful leaf 2 on ancient CPUs) are dropped.
Cpuid FromKvmCpuid(const kvm_cpuid2& cpuid);

// A kvm_cpuid2 buffer holding `cpuid` in its order, padding zeroed.
std::vector<uint8_t> ToKvmCpuid(const Cpuid& cpuid);

}  // namespace virt::kvm
