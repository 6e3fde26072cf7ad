// KvmStateScratch: the ioctl buffers a vCPU's CPUID and MSR calls reuse, so that a state save or
// restore allocates only what the VcpuState it returns holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>  // std::lock_guard
#include <span>
#include <vector>

#include "kvm_cpuid.h"
#include "light_mutex.h"
#include "virt/cpuid.h"
#include "virt/kvm/kvm_ioctl.h"
#include "virt/registers.h"

namespace virt::kvm {

// The CPUID buffer for KVM_GET_CPUID2 (room for kMaxCpuidEntries) and the Cpuid converted from
// the table last read into it. Several threads may use one (each call holds a lock while it reads
// and converts): VcpuCpuid allows any one thread at a time, the state calls the vCPU's own.
class KvmCpuidScratch {
 public:
  class Lease {
   public:
    // The buffer, nent = kMaxCpuidEntries, ready for KVM_GET_CPUID2 (entries not zeroed: KVM
    // writes the `nent` it returns, and only those are read).
    kvm_cpuid2* buffer() { return scratch_.buffer_.get(); }
    // The Cpuid of the table KVM_GET_CPUID2 wrote into buffer(): FromKvmCpuid of it, converted
    // again only when the table's bytes differ from the last converted one.
    const Cpuid& Converted();

   private:
    friend class KvmCpuidScratch;
    explicit Lease(KvmCpuidScratch& s);
    KvmCpuidScratch& scratch_;
    std::lock_guard<LightMutex> lock_;
  };
  KvmCpuidScratch();
  Lease Acquire() { return Lease(*this); }

 private:
  LightMutex mu_;  // uncontended on the state path: a few inline instructions
  std::unique_ptr<kvm_cpuid2, void (*)(kvm_cpuid2*)> buffer_;
  std::vector<kvm_cpuid_entry2> converted_from_;  // the KVM entries `converted_` came from
  Cpuid converted_;
};

// MsrEntry and kvm_msr_entry share a layout (index at 0, value/data at 8, 16 bytes: MsrEntry's
// padding is where KVM's `reserved` is), so MSR lists are copied between them as bytes.
void CopyMsrsFromKvm(const kvm_msrs& k, size_t n, MsrEntry* out);
// Writes `msrs` into k->entries with `reserved` zeroed.
void CopyMsrsToKvm(std::span<const MsrEntry> msrs, kvm_msrs* k);

// A kvm_msrs buffer reused by one vCPU's KVM_GET/SET_MSRS calls (the vCPU thread only, as the
// register calls are): grows to the largest count asked for, never shrinks.
class KvmMsrScratch {
 public:
  // Header with nmsrs = n, then room for n entries (their contents are left as they were).
  kvm_msrs* Get(size_t n);

 private:
  std::vector<uint64_t> words_;  // uint64_t: the entries' 8-byte alignment
};

}  // namespace virt::kvm
