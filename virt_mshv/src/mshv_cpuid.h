// ReadVpCpuid: a VP's CPUID table as the hypervisor computes it (HVCALL_GET_VP_CPUID_VALUES).
#pragma once

#include <cstdint>
#include <span>

#include "virt/cpuid.h"
#include "virt/mshv/mshv_ioctl.h"
#include "virt/result.h"

namespace virt::mshv {

// The leaves whose ECX selects a sub-leaf, and how many sub-leaves ReadVpCpuid asks for (the
// Intel SDM / AMD APM CPUID tables). Their entries carry kCpuidIndexSignificant.
struct CpuidSubleafRange {
  uint32_t function;
  uint32_t count;
};
std::span<const CpuidSubleafRange> CpuidSubleafRanges();

// Leaves read per range (basic 0x0, hypervisor 0x40000000, extended 0x80000000): each range is
// capped at this many leaves whatever its first leaf's EAX claims.
inline constexpr uint32_t kMaxCpuidLeavesPerRange = 64;

// MSHV has no "supported CPUID" list: the hypervisor computes CPUID per VP (from the host, the
// partition's processor features and the VP's XCR0/XSS). This reads it leaf by leaf for VP
// `vp_index`, which must exist, through `fd` (the partition or that VP's fd):
//   1. one call for leaves 0x0, 0x40000000 and 0x80000000 (their EAX is the range's last leaf);
//   2. every leaf of the three ranges (index 0, or sub-leaves 0..count-1 of the
//      CpuidSubleafRanges functions), kMaxCpuidLeavesPerCall per HVCALL_GET_VP_CPUID_VALUES.
// Sub-leaves above 0 that read as all zeros are left out. Entries come in (function, index)
// order. Fails with the first hypercall's error.
Result<Cpuid> ReadVpCpuid(MshvIoctl& ioctl, int fd, uint32_t vp_index);

}  // namespace virt::mshv
