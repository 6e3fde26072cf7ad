// KvmStateScratch: reused KVM_GET_CPUID2 and KVM_GET/SET_MSRS buffers of one vCPU.
#include "kvm_state_scratch.h"

#include <cstddef>
#include <cstring>
#include <emmintrin.h>
#include <type_traits>
#include <new>

namespace virt::kvm {
namespace {

constexpr size_t kCpuidBytes =
    sizeof(kvm_cpuid2) + size_t{kMaxCpuidEntries} * sizeof(kvm_cpuid_entry2);

kvm_cpuid2* NewCpuid() {
  // Default-initialised storage: 10 KiB that KVM overwrites need no zeroing on every call.
  auto* raw = static_cast<kvm_cpuid2*>(::operator new(kCpuidBytes, std::align_val_t{8}));
  raw->nent = 0;
  raw->padding = 0;
  return raw;
}

void DeleteCpuid(kvm_cpuid2* p) { ::operator delete(p, std::align_val_t{8}); }

}  // namespace

KvmCpuidScratch::KvmCpuidScratch() : buffer_(NewCpuid(), DeleteCpuid) {}

KvmCpuidScratch::Lease::Lease(KvmCpuidScratch& s) : scratch_(s), lock_(s.mu_) {
  scratch_.buffer_->nent = kMaxCpuidEntries;
}

const Cpuid& KvmCpuidScratch::Lease::Converted() {
  const kvm_cpuid2& got = *scratch_.buffer_;
  const uint32_t n = got.nent <= kMaxCpuidEntries ? got.nent : kMaxCpuidEntries;
  std::vector<kvm_cpuid_entry2>& from = scratch_.converted_from_;
  const bool same = from.size() == n && (n == 0 || std::memcmp(from.data(), got.entries,
                                                               n * sizeof(kvm_cpuid_entry2)) == 0);
  if (!same) {
    from.assign(got.entries, got.entries + n);
    scratch_.converted_ = FromKvmCpuid(got);
  }
  return scratch_.converted_;
}

static_assert(sizeof(MsrEntry) == sizeof(kvm_msr_entry) && offsetof(MsrEntry, index) == 0 &&
              offsetof(MsrEntry, value) == offsetof(kvm_msr_entry, data) &&
              offsetof(kvm_msr_entry, index) == 0 && std::is_trivially_copyable_v<MsrEntry>);

void CopyMsrsFromKvm(const kvm_msrs& k, size_t n, MsrEntry* out) {
  if (n > 0) std::memcpy(static_cast<void*>(out), k.entries, n * sizeof(MsrEntry));
}

void CopyMsrsToKvm(std::span<const MsrEntry> msrs, kvm_msrs* k) {
  // Each entry is 16 bytes in both layouts: copied as one vector with `reserved` (MsrEntry's
  // padding) masked to zero, about half the instructions of a memcpy and a zeroing pass.
  const __m128i keep = _mm_set_epi32(-1, -1, 0, -1);  // index, reserved, data (low, high)
  kvm_msr_entry* out = k->entries;
  for (const MsrEntry& m : msrs) {
    const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&m));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out++), _mm_and_si128(e, keep));
  }
}

kvm_msrs* KvmMsrScratch::Get(size_t n) {
  static_assert(sizeof(kvm_msrs) == sizeof(uint64_t) && sizeof(kvm_msr_entry) == 2 * sizeof(uint64_t));
  const size_t words = 1 + 2 * n;
  if (words_.size() < words) words_.resize(words);
  auto* k = reinterpret_cast<kvm_msrs*>(words_.data());
  k->nmsrs = static_cast<uint32_t>(n);
  k->pad = 0;
  return k;
}

}  // namespace virt::kvm
