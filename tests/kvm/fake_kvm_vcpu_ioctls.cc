// FakeKvmState's vCPU state ioctls: MSRs, CPUID, XSAVE/XCRs, debug registers, LAPIC, events,
// MP state.
#include "mock_kvm_ioctl.h"

namespace virt::kvm::test {

Result<int> FakeKvmState::GetMsrs(int, kvm_msrs* msrs) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_MSRS")) return *e;
  msr_calls_.emplace_back(msrs->entries, msrs->entries + msrs->nmsrs);
  const int n = Processed(msrs->entries, msrs->nmsrs);
  for (int i = 0; i < n; ++i) msrs->entries[i].data = msr_values_[msrs->entries[i].index];
  return n;
}

Result<int> FakeKvmState::SetMsrs(int, const kvm_msrs& msrs) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_MSRS")) return *e;
  msr_calls_.emplace_back(msrs.entries, msrs.entries + msrs.nmsrs);
  const int n = Processed(msrs.entries, msrs.nmsrs);
  for (int i = 0; i < n; ++i) msr_values_[msrs.entries[i].index] = msrs.entries[i].data;
  return n;
}

Status FakeKvmState::SetCpuid2(int fd, const kvm_cpuid2& cpuid) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_CPUID2")) return *e;
  if (ran_.contains(fd)) return Error::Errno("KVM_SET_CPUID2", EINVAL);  // KVM since 5.16
  const size_t bytes = offsetof(kvm_cpuid2, entries) + cpuid.nent * sizeof(kvm_cpuid_entry2);
  const auto* p = reinterpret_cast<const uint8_t*>(&cpuid);
  cpuid_set_[fd].assign(p, p + bytes);
  return Ok();
}

Status FakeKvmState::GetCpuid2(int fd, kvm_cpuid2* cpuid) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_CPUID2")) return *e;
  const std::vector<uint8_t>& raw = cpuid_set_[fd];
  uint32_t nent = 0;
  if (raw.size() >= sizeof(kvm_cpuid2)) std::memcpy(&nent, raw.data(), sizeof nent);
  if (cpuid->nent < nent) {
    cpuid->nent = nent;
    return Error::Errno("KVM_GET_CPUID2", E2BIG);
  }
  cpuid->nent = nent;
  if (nent > 0) {
    std::memcpy(cpuid->entries, raw.data() + offsetof(kvm_cpuid2, entries),
                nent * sizeof(kvm_cpuid_entry2));
  }
  return Ok();
}

Status FakeKvmState::GetXsave(int fd, kvm_xsave* x) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_XSAVE")) return *e;
  std::memcpy(x, vcpu_state_[fd].xsave.data(), sizeof(kvm_xsave));
  return Ok();
}

Status FakeKvmState::GetXsave2(int fd, kvm_xsave* x) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_XSAVE2")) return *e;
  std::memcpy(x, vcpu_state_[fd].xsave.data(), vcpu_state_[fd].xsave.size());
  return Ok();
}

Status FakeKvmState::SetXsave(int fd, const kvm_xsave& x) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_XSAVE")) return *e;
  auto& xs = vcpu_state_[fd].xsave;
  const size_t n = caps_.count(KVM_CAP_XSAVE2) && caps_[KVM_CAP_XSAVE2] == 0 ? 4096 : xs.size();
  std::memcpy(xs.data(), &x, n);
  return Ok();
}

Status FakeKvmState::SetXcrs(int fd, const kvm_xcrs& x) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_XCRS")) return *e;
  if (x.nr_xcrs > KVM_MAX_XCRS || x.flags != 0) return Error::Errno("KVM_SET_XCRS", EINVAL);
  vcpu_state_[fd].xcrs = x;
  return Ok();
}

Status FakeKvmState::GetDebugRegs(int fd, kvm_debugregs* r) {
  return Get1("KVM_GET_DEBUGREGS", vcpu_state_[fd].debug, r);
}

Status FakeKvmState::SetDebugRegs(int fd, const kvm_debugregs& r) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_DEBUGREGS")) return *e;
  if (r.flags != 0) return Error::Errno("KVM_SET_DEBUGREGS", EINVAL);
  vcpu_state_[fd].debug = r;
  return Ok();
}

Status FakeKvmState::SetLapic(int fd, const kvm_lapic_state& l) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_LAPIC")) return *e;
  vcpu_state_[fd].lapic = l;
  return Ok();
}

Status FakeKvmState::GetVcpuEvents(int fd, kvm_vcpu_events* ev) {
  return Get1("KVM_GET_VCPU_EVENTS", vcpu_state_[fd].events, ev);
}

Status FakeKvmState::SetVcpuEvents(int fd, const kvm_vcpu_events& ev) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_VCPU_EVENTS")) return *e;
  vcpu_state_[fd].events = ev;
  return Ok();
}

Status FakeKvmState::GetMpState(int fd, kvm_mp_state* state) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_MP_STATE")) return *e;
  state->mp_state = mp_states_[fd];
  return Ok();
}

Status FakeKvmState::SetMpState(int fd, const kvm_mp_state& state) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_MP_STATE")) return *e;
  if (state.mp_state > KVM_MP_STATE_SIPI_RECEIVED) return Error::Errno("KVM_SET_MP_STATE", EINVAL);
  mp_states_[fd] = state.mp_state;
  return Ok();
}

}  // namespace virt::kvm::test
