// VcpuStateTwin: a vCPU state save + restore made directly on the KvmIoctl seam.
#include "vcpu_state_twin.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace virt::cost {
namespace {

constexpr uint32_t kCpuidCapacity = 256;  // the library's KVM_GET_CPUID2 capacity
constexpr uint32_t kTscMsr = 0x10;

void Check(const Status& s, const char* what) {
  if (s) return;
  std::fprintf(stderr, "virt-cost: raw %s: %s\n", what, s.error().Message().c_str());
  std::exit(1);
}

// KVM_GET/SET_MSRS answer with the number of MSRs done: all of them, or it is a failure here.
void CheckCount(const Result<int>& r, size_t want, const char* what) {
  if (r && static_cast<size_t>(*r) == want) return;
  std::fprintf(stderr, "virt-cost: raw %s: %s\n", what,
               r ? "not every MSR was done" : r.error().Message().c_str());
  std::exit(1);
}

}  // namespace

// 8-byte-aligned storage for the variable-length ioctl arguments.
struct VcpuStateTwin::Buffers {
  explicit Buffers(size_t nmsrs)
      : cpuid_words(1 + kCpuidCapacity * sizeof(kvm_cpuid_entry2) / 8),
        check_words(cpuid_words.size()),
        msr_words(1 + 2 * nmsrs) {}
  kvm_cpuid2* cpuid() { return reinterpret_cast<kvm_cpuid2*>(cpuid_words.data()); }
  kvm_cpuid2* check() { return reinterpret_cast<kvm_cpuid2*>(check_words.data()); }
  kvm_msrs* msrs() { return reinterpret_cast<kvm_msrs*>(msr_words.data()); }
  kvm_msrs* tsc() { return reinterpret_cast<kvm_msrs*>(tsc_words); }

  std::vector<uint64_t> cpuid_words, check_words, msr_words;
  uint64_t tsc_words[3] = {};
  kvm_sregs sregs{};
  kvm_regs regs{};
  kvm_xcrs xcrs{};
  alignas(8) uint32_t xsave_words[1024] = {};  // kvm_xsave without its flexible tail (4 KiB)
  kvm_xsave* xsave() { return reinterpret_cast<kvm_xsave*>(xsave_words); }
  kvm_debugregs debugregs{};
  kvm_mp_state mp_state{};
  kvm_lapic_state lapic{};
  kvm_vcpu_events events{};
};

VcpuStateTwin::VcpuStateTwin(kvm::KvmIoctl& seam, int vcpu_fd, std::vector<uint32_t> msrs)
    : seam_(seam), fd_(vcpu_fd), msrs_(std::move(msrs)), b_(std::make_unique<Buffers>(msrs_.size())) {
  // The indices once: KVM_GET_MSRS writes back only the values, KVM_SET_MSRS reads the same.
  kvm_msrs* k = b_->msrs();
  k->nmsrs = static_cast<uint32_t>(msrs_.size());
  for (size_t i = 0; i < msrs_.size(); ++i) k->entries[i] = {msrs_[i], 0, 0};
}

VcpuStateTwin::~VcpuStateTwin() = default;

void VcpuStateTwin::SaveRestore() {
  Buffers& b = *b_;
  b.cpuid()->nent = kCpuidCapacity;
  Check(seam_.GetCpuid2(fd_, b.cpuid()), "KVM_GET_CPUID2");
  kvm_msrs* msrs = b.msrs();
  CheckCount(seam_.GetMsrs(fd_, msrs), msrs_.size(), "KVM_GET_MSRS");
  Check(seam_.GetSregs(fd_, &b.sregs), "KVM_GET_SREGS");
  Check(seam_.GetRegs(fd_, &b.regs), "KVM_GET_REGS");
  Check(seam_.GetXcrs(fd_, &b.xcrs), "KVM_GET_XCRS");
  Check(seam_.GetXsave(fd_, b.xsave()), "KVM_GET_XSAVE");
  Check(seam_.GetDebugRegs(fd_, &b.debugregs), "KVM_GET_DEBUGREGS");
  Check(seam_.GetMpState(fd_, &b.mp_state), "KVM_GET_MP_STATE");
  Check(seam_.GetLapic(fd_, &b.lapic), "KVM_GET_LAPIC");
  Check(seam_.GetVcpuEvents(fd_, &b.events), "KVM_GET_VCPU_EVENTS");
  kvm_msrs* tsc = b.tsc();
  tsc->nmsrs = 1;
  tsc->entries[0] = {kTscMsr, 0, 0};
  CheckCount(seam_.GetMsrs(fd_, tsc), 1, "KVM_GET_MSRS (TSC)");

  b.check()->nent = kCpuidCapacity;
  Check(seam_.GetCpuid2(fd_, b.check()), "KVM_GET_CPUID2");
  const uint32_t n = b.cpuid()->nent;
  if (b.check()->nent != n ||
      std::memcmp(b.check()->entries, b.cpuid()->entries, n * sizeof(kvm_cpuid_entry2)) != 0) {
    Check(seam_.SetCpuid2(fd_, *b.cpuid()), "KVM_SET_CPUID2");
  }
  CheckCount(seam_.SetMsrs(fd_, *msrs), msrs_.size(), "KVM_SET_MSRS");
  Check(seam_.SetSregs(fd_, b.sregs), "KVM_SET_SREGS");
  Check(seam_.SetRegs(fd_, b.regs), "KVM_SET_REGS");
  Check(seam_.SetXcrs(fd_, b.xcrs), "KVM_SET_XCRS");
  Check(seam_.SetXsave(fd_, *b.xsave()), "KVM_SET_XSAVE");
  Check(seam_.SetDebugRegs(fd_, b.debugregs), "KVM_SET_DEBUGREGS");
  Check(seam_.SetMpState(fd_, b.mp_state), "KVM_SET_MP_STATE");
  Check(seam_.SetLapic(fd_, b.lapic), "KVM_SET_LAPIC");
  Check(seam_.SetVcpuEvents(fd_, b.events), "KVM_SET_VCPU_EVENTS");
  CheckCount(seam_.SetMsrs(fd_, *tsc), 1, "KVM_SET_MSRS (TSC)");
}

}  // namespace virt::cost
