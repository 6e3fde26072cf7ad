// CPUID leaf 0x15 for a WHP guest: the TSC frequency as crystal x ratio, exact above 4.29 GHz.
#pragma once

#include <cstdint>

#include "virt/whp/whp_types.h"

namespace virt::whp {

// The leaf 0x15 a guest reads its TSC frequency from: tsc = ECX (crystal Hz) * EBX / EAX.
// Putting the whole frequency in EBX over a 1 Hz crystal wraps above 4.29 GHz (32-bit EBX), so
// the crystal is the largest divisor of `tsc_hz` that is at most 25 MHz and leaves EBX within 32
// bits, with EAX = 1; every such frequency is then exact (4.4 GHz -> 25 MHz x 176). Only when
// no divisor fits (tsc_hz >= 2^32 with no factor in range, e.g. a prime) the crystal is 1 kHz and
// EBX the frequency rounded to the nearest kHz. tsc_hz == 0 (unknown) gives an all-zero leaf, which
// tells the guest the leaf is not enumerated. Pure function.
WHV_X64_CPUID_RESULT TscFrequencyLeaf(uint64_t tsc_hz);

// The frequency a guest computes from `leaf` (ECX * EBX / EAX; 0 when EAX or ECX is 0).
uint64_t TscFrequencyFromLeaf(const WHV_X64_CPUID_RESULT& leaf);

}  // namespace virt::whp
