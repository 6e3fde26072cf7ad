// ProbeCpuid: the CPUID table a WHP VP presents, read leaf by leaf with
// WHvGetVirtualProcessorCpuidOutput.
#pragma once

#include <cstdint>
#include <functional>

#include "virt/cpuid.h"
#include "virt/result.h"
#include "virt/whp/whp_api.h"

namespace virt::whp {

// Answers CPUID(function, index) as the VP would see it (eax..edx of the returned entry).
using CpuidQuery = std::function<Result<CpuidEntry>(uint32_t function, uint32_t index)>;

// Walks the basic (0..CPUID.0:EAX), hypervisor (0x40000000..CPUID.0x40000000:EAX, only when that
// EAX is in 0x40000000..0x400000FF) and extended (0x80000000..CPUID.0x80000000:EAX) ranges and
// every sub-leaf the architecture enumerates: leaf 4 and 0x8000001D until the cache type is 0,
// 0xB, 0x1F and 0x80000026 until the level type is 0, 7, 0x14, 0x17, 0x18, 0x1D, 0x20 and 0x24 up
// to the maximum sub-leaf in sub-leaf 0 EAX, 0xD sub-leaves 0, 1 and each state component set in
// 0xD.0 EDX:EAX or 0xD.1 EDX:ECX; the other sub-leaf leaves (0xF, 0x10, 0x12, 0x1B, 0x1E, 0x23,
// 0x80000020) give sub-leaf 0 only. Sub-leaf entries carry kCpuidIndexSignificant. Ranges are
// capped (0x100 leaves, 64 sub-leaves, 1024 entries). The first failing query is returned.
Result<Cpuid> EnumerateCpuid(const CpuidQuery& query);

// EnumerateCpuid through WHvGetVirtualProcessorCpuidOutput(partition, vp, ...). The VP must exist.
Result<Cpuid> ProbeCpuid(WhpApi& api, WHV_PARTITION_HANDLE partition, uint32_t vp);

}  // namespace virt::whp
