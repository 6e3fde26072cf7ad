// KvmVcpu CPUID and MP state: KVM_GET/SET_CPUID2 and KVM_GET/SET_MP_STATE.
#include <string>

#include "kvm_cpuid.h"
#include "kvm_vcpu.h"

namespace virt::kvm {
namespace {

struct MpStateName {
  MpState state;
  uint32_t kvm;
};
constexpr MpStateName kMpStates[] = {
    {MpState::kRunnable, KVM_MP_STATE_RUNNABLE},
    {MpState::kUninitialized, KVM_MP_STATE_UNINITIALIZED},
    {MpState::kInitReceived, KVM_MP_STATE_INIT_RECEIVED},
    {MpState::kHalted, KVM_MP_STATE_HALTED},
    {MpState::kSipiReceived, KVM_MP_STATE_SIPI_RECEIVED},
};

}  // namespace

Result<Cpuid> KvmVcpu::GetCpuid() {
  KvmCpuidScratch::Lease lease = cpuid_scratch_.Acquire();
  if (Status s = ioctl_->GetCpuid2(fd_.get(), lease.buffer()); !s) return s.error();
  return lease.Converted();
}

Status KvmVcpu::LoadCpuid(const Cpuid& cpuid) {
  // The table a vCPU already has is accepted even after it ran (KVM allows the same table
  // again): restoring a state saved from this very vCPU works. Compared without copying it.
  {
    KvmCpuidScratch::Lease lease = cpuid_scratch_.Acquire();
    if (Status s = ioctl_->GetCpuid2(fd_.get(), lease.buffer()); !s) return s;
    if (lease.Converted() == cpuid) return Ok();
  }
  return SetCpuid(cpuid);
}

Status KvmVcpu::SetCpuid(const Cpuid& cpuid) {
  if (entered_) {
    return Error::Make(ErrorCode::kFailedPrecondition, "KVM_SET_CPUID2",
                       "vCPU " + std::to_string(index_) +
                           " has run: KVM fixes its CPUID at the first KVM_RUN");
  }
  if (cpuid.empty() || cpuid.size() > kMaxCpuidEntries) {
    return Error::Make(ErrorCode::kInvalidArgument, "KVM_SET_CPUID2",
                       std::to_string(cpuid.size()) + " entries, KVM takes 1.." +
                           std::to_string(kMaxCpuidEntries));
  }
  const std::vector<uint8_t> buf = ToKvmCpuid(cpuid);
  return ioctl_->SetCpuid2(fd_.get(), *reinterpret_cast<const kvm_cpuid2*>(buf.data()));
}

Result<MpState> KvmVcpu::GetMpState() {
  kvm_mp_state k{};
  if (Status s = ioctl_->GetMpState(fd_.get(), &k); !s) return s.error();
  for (const MpStateName& n : kMpStates) {
    if (n.kvm == k.mp_state) return n.state;
  }
  return Error::Make(ErrorCode::kUnavailable, "KVM_GET_MP_STATE",
                     "state " + std::to_string(k.mp_state) + " is not an x86 INIT/SIPI state");
}

Status KvmVcpu::SetMpState(MpState state) {
  for (const MpStateName& n : kMpStates) {
    if (n.state != state) continue;
    kvm_mp_state k{};
    k.mp_state = n.kvm;
    return ioctl_->SetMpState(fd_.get(), k);
  }
  return Error::Make(ErrorCode::kInvalidArgument, "KVM_SET_MP_STATE", "unknown MpState");
}

}  // namespace virt::kvm
