// kvm_cpuid2 <-> virt::Cpuid.
#include "kvm_cpuid.h"

namespace virt::kvm {

std::vector<uint8_t> NewCpuidBuffer(uint32_t n) {
  std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + size_t{n} * sizeof(kvm_cpuid_entry2));
  reinterpret_cast<kvm_cpuid2*>(buf.data())->nent = n;
  return buf;
}

Cpuid FromKvmCpuid(const kvm_cpuid2& cpuid) {
  std::vector<CpuidEntry> entries;
  entries.reserve(cpuid.nent);
  for (uint32_t i = 0; i < cpuid.nent; ++i) {
    const kvm_cpuid_entry2& k = cpuid.entries[i];
    CpuidEntry e;
    e.function = k.function;
    e.index = k.index;
    e.flags = (k.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ? kCpuidIndexSignificant : 0;
    e.eax = k.eax, e.ebx = k.ebx, e.ecx = k.ecx, e.edx = k.edx;
    entries.push_back(e);
  }
  return Cpuid(entries);
}

std::vector<uint8_t> ToKvmCpuid(const Cpuid& cpuid) {
  std::vector<uint8_t> buf = NewCpuidBuffer(static_cast<uint32_t>(cpuid.size()));
  auto* k = reinterpret_cast<kvm_cpuid2*>(buf.data());
  uint32_t i = 0;
  for (const CpuidEntry& e : cpuid.entries()) {
    kvm_cpuid_entry2& out = k->entries[i++];
    out.function = e.function;
    out.index = e.index;
    out.flags = (e.flags & kCpuidIndexSignificant) ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    out.eax = e.eax, out.ebx = e.ebx, out.ecx = e.ecx, out.edx = e.edx;
  }
  return buf;
}

}  // namespace virt::kvm
