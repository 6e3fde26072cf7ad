// CPUID leaf 0x15 (TSC / core crystal clock) computed so every field fits in 32 bits.
#include "whp_cpuid.h"

#include <limits>

namespace virt::whp {
namespace {

constexpr uint64_t kMaxCrystalHz = 25'000'000;  // the usual Intel core crystal
constexpr uint64_t kFallbackCrystalHz = 1'000;
constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();

WHV_X64_CPUID_RESULT Leaf(uint64_t crystal_hz, uint64_t ratio) {
  WHV_X64_CPUID_RESULT leaf{};
  leaf.Function = 0x15;
  leaf.Eax = 1;
  leaf.Ebx = static_cast<uint32_t>(ratio);
  leaf.Ecx = static_cast<uint32_t>(crystal_hz);
  return leaf;
}

}  // namespace

WHV_X64_CPUID_RESULT TscFrequencyLeaf(uint64_t tsc_hz) {
  if (tsc_hz == 0) {
    WHV_X64_CPUID_RESULT leaf{};
    leaf.Function = 0x15;
    return leaf;
  }
  // The ratio must fit: crystal >= ceil(tsc / (2^32 - 1)). Walk the divisor pairs (i, tsc / i)
  // up to sqrt(tsc) (about 75 000 steps at 5.7 GHz) and keep the largest crystal that fits.
  const uint64_t min_crystal = (tsc_hz + kMax32 - 1) / kMax32;
  uint64_t best = 0;
  auto consider = [&](uint64_t crystal) {
    if (crystal >= min_crystal && crystal <= kMaxCrystalHz && crystal > best) best = crystal;
  };
  for (uint64_t i = 1; i * i <= tsc_hz; ++i) {
    if (tsc_hz % i != 0) continue;
    consider(i);
    consider(tsc_hz / i);
  }
  if (best != 0) return Leaf(best, tsc_hz / best);
  return Leaf(kFallbackCrystalHz, (tsc_hz + kFallbackCrystalHz / 2) / kFallbackCrystalHz);
}

uint64_t TscFrequencyFromLeaf(const WHV_X64_CPUID_RESULT& leaf) {
  if (leaf.Eax == 0 || leaf.Ecx == 0) return 0;
  return uint64_t{leaf.Ecx} * leaf.Ebx / leaf.Eax;
}

}  // namespace virt::whp
