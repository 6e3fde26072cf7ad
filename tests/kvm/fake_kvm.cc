// The KVM mock suites' shared, compiled-once part: MockKvmIoctl's constructor and destructor and
// FakeKvm's ON_CALL defaults (instantiating them in every test file cost most of its compile).
#include "mock_kvm_ioctl.h"

namespace virt::kvm::test {

MockKvmIoctl::MockKvmIoctl() = default;
MockKvmIoctl::~MockKvmIoctl() = default;

FakeKvm::FakeKvm() : mock(std::make_shared<Mock>()), state(std::make_shared<FakeKvmState>()) {
  using ::testing::_;
  std::shared_ptr<FakeKvmState> s = state;  // the actions keep the state alive
  Mock& m = *mock;
  ON_CALL(m, Open(_)).WillByDefault([s](const char* p) { return s->Open(p); });
  ON_CALL(m, Close(_)).WillByDefault([s](int fd) { return s->Close(fd); });
  ON_CALL(m, GetApiVersion(_)).WillByDefault([s](int fd) { return s->GetApiVersion(fd); });
  ON_CALL(m, CheckExtension(_, _)).WillByDefault([s](int fd, int cap) {
    return s->CheckExtension(fd, cap);
  });
  ON_CALL(m, GetVcpuMmapSize(_)).WillByDefault([s](int fd) { return s->GetVcpuMmapSize(fd); });
  ON_CALL(m, GetSupportedCpuid(_, _)).WillByDefault([s](int fd, kvm_cpuid2* c) {
    return s->GetSupportedCpuid(fd, c);
  });
  ON_CALL(m, GetMsrIndexList(_, _)).WillByDefault([s](int fd, kvm_msr_list* l) {
    return s->GetMsrIndexList(fd, l);
  });
  ON_CALL(m, GetMsrFeatureIndexList(_, _)).WillByDefault([s](int fd, kvm_msr_list* l) {
    return s->GetMsrFeatureIndexList(fd, l);
  });
  ON_CALL(m, GetIrqchip(_, _)).WillByDefault([s](int fd, kvm_irqchip* c) {
    return s->GetIrqchip(fd, c);
  });
  ON_CALL(m, SetIrqchip(_, _)).WillByDefault([s](int fd, const kvm_irqchip& c) {
    return s->SetIrqchip(fd, c);
  });
  ON_CALL(m, GetPit2(_, _)).WillByDefault([s](int fd, kvm_pit_state2* p) {
    return s->GetPit2(fd, p);
  });
  ON_CALL(m, SetPit2(_, _)).WillByDefault([s](int fd, const kvm_pit_state2& p) {
    return s->SetPit2(fd, p);
  });
  ON_CALL(m, GetClock(_, _)).WillByDefault([s](int fd, kvm_clock_data* c) {
    return s->GetClock(fd, c);
  });
  ON_CALL(m, SetClock(_, _)).WillByDefault([s](int fd, const kvm_clock_data& c) {
    return s->SetClock(fd, c);
  });
  ON_CALL(m, GetDirtyLog(_, _)).WillByDefault([s](int fd, const kvm_dirty_log& l) {
    return s->GetDirtyLog(fd, l);
  });
  ON_CALL(m, ClearDirtyLog(_, _)).WillByDefault([s](int fd, const kvm_clear_dirty_log& l) {
    return s->ClearDirtyLog(fd, l);
  });
  ON_CALL(m, EnableCap(_, _)).WillByDefault([s](int fd, const kvm_enable_cap& c) {
    return s->EnableCap(fd, c);
  });
  ON_CALL(m, GetXsave(_, _)).WillByDefault([s](int fd, kvm_xsave* x) { return s->GetXsave(fd, x); });
  ON_CALL(m, GetXsave2(_, _)).WillByDefault([s](int fd, kvm_xsave* x) {
    return s->GetXsave2(fd, x);
  });
  ON_CALL(m, SetXsave(_, _)).WillByDefault([s](int fd, const kvm_xsave& x) {
    return s->SetXsave(fd, x);
  });
  ON_CALL(m, GetXcrs(_, _)).WillByDefault([s](int fd, kvm_xcrs* x) { return s->GetXcrs(fd, x); });
  ON_CALL(m, SetXcrs(_, _)).WillByDefault([s](int fd, const kvm_xcrs& x) {
    return s->SetXcrs(fd, x);
  });
  ON_CALL(m, GetDebugRegs(_, _)).WillByDefault([s](int fd, kvm_debugregs* r) {
    return s->GetDebugRegs(fd, r);
  });
  ON_CALL(m, SetDebugRegs(_, _)).WillByDefault([s](int fd, const kvm_debugregs& r) {
    return s->SetDebugRegs(fd, r);
  });
  ON_CALL(m, GetLapic(_, _)).WillByDefault([s](int fd, kvm_lapic_state* l) {
    return s->GetLapic(fd, l);
  });
  ON_CALL(m, SetLapic(_, _)).WillByDefault([s](int fd, const kvm_lapic_state& l) {
    return s->SetLapic(fd, l);
  });
  ON_CALL(m, GetVcpuEvents(_, _)).WillByDefault([s](int fd, kvm_vcpu_events* e) {
    return s->GetVcpuEvents(fd, e);
  });
  ON_CALL(m, SetVcpuEvents(_, _)).WillByDefault([s](int fd, const kvm_vcpu_events& e) {
    return s->SetVcpuEvents(fd, e);
  });
  ON_CALL(m, CreateVm(_, _)).WillByDefault([s](int fd, unsigned long t) {
    return s->CreateVm(fd, t);
  });
  ON_CALL(m, CreateIrqchip(_)).WillByDefault([s](int fd) { return s->CreateIrqchip(fd); });
  ON_CALL(m, CreatePit2(_, _)).WillByDefault([s](int fd, const kvm_pit_config& c) {
    return s->CreatePit2(fd, c);
  });
  ON_CALL(m, IrqLine(_, _)).WillByDefault([s](int fd, const kvm_irq_level& l) {
    return s->IrqLine(fd, l);
  });
  ON_CALL(m, SetTssAddr(_, _)).WillByDefault([s](int fd, uint64_t a) {
    return s->SetTssAddr(fd, a);
  });
  ON_CALL(m, SetIdentityMapAddr(_, _)).WillByDefault([s](int fd, uint64_t a) {
    return s->SetIdentityMapAddr(fd, a);
  });
  ON_CALL(m, SetUserMemoryRegion(_, _))
      .WillByDefault([s](int fd, const kvm_userspace_memory_region& r) {
        return s->SetUserMemoryRegion(fd, r);
      });
  ON_CALL(m, SetGsiRouting(_, _)).WillByDefault([s](int fd, const kvm_irq_routing& r) {
    return s->SetGsiRouting(fd, r);
  });
  ON_CALL(m, Irqfd(_, _)).WillByDefault([s](int fd, const kvm_irqfd& i) {
    return s->Irqfd(fd, i);
  });
  ON_CALL(m, SignalMsi(_, _)).WillByDefault([s](int fd, const kvm_msi& msi) {
    return s->SignalMsi(fd, msi);
  });
  ON_CALL(m, Ioeventfd(_, _)).WillByDefault([s](int fd, const kvm_ioeventfd& i) {
    return s->Ioeventfd(fd, i);
  });
  ON_CALL(m, CreateVcpu(_, _)).WillByDefault([s](int fd, unsigned long id) {
    return s->CreateVcpu(fd, id);
  });
  ON_CALL(m, MapRun(_, _)).WillByDefault([s](int fd, size_t size) {
    return s->MapRun(fd, size);
  });
  ON_CALL(m, UnmapRun(_, _)).WillByDefault([s](kvm_run* run, size_t size) {
    return s->UnmapRun(run, size);
  });
  ON_CALL(m, Run(_)).WillByDefault([s](int fd) { return s->Run(fd); });
  ON_CALL(m, GetRegs(_, _)).WillByDefault([s](int fd, kvm_regs* r) { return s->GetRegs(fd, r); });
  ON_CALL(m, SetRegs(_, _)).WillByDefault([s](int fd, const kvm_regs& r) {
    return s->SetRegs(fd, r);
  });
  ON_CALL(m, GetSregs(_, _)).WillByDefault([s](int fd, kvm_sregs* r) {
    return s->GetSregs(fd, r);
  });
  ON_CALL(m, SetSregs(_, _)).WillByDefault([s](int fd, const kvm_sregs& r) {
    return s->SetSregs(fd, r);
  });
  ON_CALL(m, GetFpu(_, _)).WillByDefault([s](int fd, kvm_fpu* f) { return s->GetFpu(fd, f); });
  ON_CALL(m, SetFpu(_, _)).WillByDefault([s](int fd, const kvm_fpu& f) {
    return s->SetFpu(fd, f);
  });
  ON_CALL(m, GetMsrs(_, _)).WillByDefault([s](int fd, kvm_msrs* msrs) {
    return s->GetMsrs(fd, msrs);
  });
  ON_CALL(m, SetMsrs(_, _)).WillByDefault([s](int fd, const kvm_msrs& msrs) {
    return s->SetMsrs(fd, msrs);
  });
  ON_CALL(m, SetCpuid2(_, _)).WillByDefault([s](int fd, const kvm_cpuid2& c) {
    return s->SetCpuid2(fd, c);
  });
  ON_CALL(m, GetCpuid2(_, _)).WillByDefault([s](int fd, kvm_cpuid2* c) {
    return s->GetCpuid2(fd, c);
  });
  ON_CALL(m, GetMpState(_, _)).WillByDefault([s](int fd, kvm_mp_state* st) {
    return s->GetMpState(fd, st);
  });
  ON_CALL(m, SetMpState(_, _)).WillByDefault([s](int fd, const kvm_mp_state& st) {
    return s->SetMpState(fd, st);
  });
}

}  // namespace virt::kvm::test
