// SystemKvmIoctl: the only file of the KVM backend that makes system calls.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {
namespace {

// ioctl(2) with EINTR retried (KVM_RUN, where EINTR is the cancellation signal, is not).
Result<int> Call(const char* op, int fd, unsigned long request, const void* arg) {
  for (;;) {
    const int rc = ::ioctl(fd, request, arg);
    if (rc >= 0) return rc;
    if (errno != EINTR) return Error::Errno(op, errno);
  }
}

// The ioctl of a call whose only result is success or failure: the success path inline, with
// no Result<int> to unwrap, so the seam method returns straight after the system call.
[[gnu::cold, gnu::noinline]] Error Failed(const char* op, int err) {
  return Error::Errno(op, err);
}

[[gnu::cold, gnu::noinline]] Status CallOkSlow(const char* op, int fd, unsigned long request,
                                               const void* arg, int err) {
  while (err == EINTR) {
    if (::ioctl(fd, request, arg) >= 0) return Ok();
    err = errno;
  }
  return Error::Errno(op, err);
}

inline Status CallOk(const char* op, int fd, unsigned long request, const void* arg) {
  if (::ioctl(fd, request, arg) >= 0) [[likely]] return Ok();
  return CallOkSlow(op, fd, request, arg, errno);
}

class SystemKvmIoctl final : public KvmIoctl {
 public:
  Result<int> Open(const char* path) override {
    const int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return Error::Errno("open", errno, path);
    return fd;
  }
  Status Close(int fd) override {
    if (::close(fd) != 0 && errno != EINTR) return Error::Errno("close", errno);
    return Ok();
  }
  Result<int> GetApiVersion(int kvm_fd) override {
    return Call("KVM_GET_API_VERSION", kvm_fd, KVM_GET_API_VERSION, nullptr);
  }
  Result<int> CheckExtension(int fd, int capability) override {
    return Call("KVM_CHECK_EXTENSION", fd, KVM_CHECK_EXTENSION,
                reinterpret_cast<const void*>(static_cast<uintptr_t>(capability)));
  }
  Result<int> GetVcpuMmapSize(int kvm_fd) override {
    return Call("KVM_GET_VCPU_MMAP_SIZE", kvm_fd, KVM_GET_VCPU_MMAP_SIZE, nullptr);
  }
  Status GetSupportedCpuid(int kvm_fd, kvm_cpuid2* cpuid) override {
    return CallOk("KVM_GET_SUPPORTED_CPUID", kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
  }
  Status GetMsrIndexList(int kvm_fd, kvm_msr_list* list) override {
    return CallOk("KVM_GET_MSR_INDEX_LIST", kvm_fd, KVM_GET_MSR_INDEX_LIST, list);
  }
  Status GetMsrFeatureIndexList(int kvm_fd, kvm_msr_list* list) override {
    return CallOk("KVM_GET_MSR_FEATURE_INDEX_LIST", kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST,
                 list);
  }
  Result<int> CreateVm(int kvm_fd, unsigned long type) override {
    return Call("KVM_CREATE_VM", kvm_fd, KVM_CREATE_VM, reinterpret_cast<const void*>(type));
  }
  Status CreateIrqchip(int vm_fd) override {
    return CallOk("KVM_CREATE_IRQCHIP", vm_fd, KVM_CREATE_IRQCHIP, nullptr);
  }
  Status CreatePit2(int vm_fd, const kvm_pit_config& config) override {
    return CallOk("KVM_CREATE_PIT2", vm_fd, KVM_CREATE_PIT2, &config);
  }
  Status IrqLine(int vm_fd, const kvm_irq_level& level) override {
    return CallOk("KVM_IRQ_LINE", vm_fd, KVM_IRQ_LINE, &level);
  }
  Status SetTssAddr(int vm_fd, uint64_t address) override {
    return CallOk("KVM_SET_TSS_ADDR", vm_fd, KVM_SET_TSS_ADDR,
                 reinterpret_cast<const void*>(static_cast<uintptr_t>(address)));
  }
  Status SetIdentityMapAddr(int vm_fd, uint64_t address) override {
    return CallOk("KVM_SET_IDENTITY_MAP_ADDR", vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &address);
  }
  Status SetUserMemoryRegion(int vm_fd, const kvm_userspace_memory_region& region) override {
    return CallOk("KVM_SET_USER_MEMORY_REGION", vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
  }
  Status SetGsiRouting(int vm_fd, const kvm_irq_routing& routing) override {
    return CallOk("KVM_SET_GSI_ROUTING", vm_fd, KVM_SET_GSI_ROUTING, &routing);
  }
  Status Irqfd(int vm_fd, const kvm_irqfd& irqfd) override {
    return CallOk("KVM_IRQFD", vm_fd, KVM_IRQFD, &irqfd);
  }
  Result<int> SignalMsi(int vm_fd, const kvm_msi& msi) override {
    return Call("KVM_SIGNAL_MSI", vm_fd, KVM_SIGNAL_MSI, &msi);
  }
  Status Ioeventfd(int vm_fd, const kvm_ioeventfd& ioeventfd) override {
    return CallOk("KVM_IOEVENTFD", vm_fd, KVM_IOEVENTFD, &ioeventfd);
  }
  Status GetIrqchip(int vm_fd, kvm_irqchip* chip) override {
    return CallOk("KVM_GET_IRQCHIP", vm_fd, KVM_GET_IRQCHIP, chip);
  }
  Status SetIrqchip(int vm_fd, const kvm_irqchip& chip) override {
    return CallOk("KVM_SET_IRQCHIP", vm_fd, KVM_SET_IRQCHIP, &chip);
  }
  Status GetPit2(int vm_fd, kvm_pit_state2* pit) override {
    return CallOk("KVM_GET_PIT2", vm_fd, KVM_GET_PIT2, pit);
  }
  Status SetPit2(int vm_fd, const kvm_pit_state2& pit) override {
    return CallOk("KVM_SET_PIT2", vm_fd, KVM_SET_PIT2, &pit);
  }
  Status GetClock(int vm_fd, kvm_clock_data* clock) override {
    return CallOk("KVM_GET_CLOCK", vm_fd, KVM_GET_CLOCK, clock);
  }
  Status SetClock(int vm_fd, const kvm_clock_data& clock) override {
    return CallOk("KVM_SET_CLOCK", vm_fd, KVM_SET_CLOCK, &clock);
  }
  Status GetDirtyLog(int vm_fd, const kvm_dirty_log& log) override {
    return CallOk("KVM_GET_DIRTY_LOG", vm_fd, KVM_GET_DIRTY_LOG, &log);
  }
  Status ClearDirtyLog(int vm_fd, const kvm_clear_dirty_log& log) override {
    return CallOk("KVM_CLEAR_DIRTY_LOG", vm_fd, KVM_CLEAR_DIRTY_LOG, &log);
  }
  Status EnableCap(int vm_fd, const kvm_enable_cap& cap) override {
    return CallOk("KVM_ENABLE_CAP", vm_fd, KVM_ENABLE_CAP, &cap);
  }
  Result<int> CreateVcpu(int vm_fd, unsigned long vcpu_id) override {
    return Call("KVM_CREATE_VCPU", vm_fd, KVM_CREATE_VCPU, reinterpret_cast<const void*>(vcpu_id));
  }
  Result<kvm_run*> MapRun(int vcpu_fd, size_t size) override {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    if (p == MAP_FAILED) return Error::Errno("mmap(kvm_run)", errno);
    return static_cast<kvm_run*>(p);
  }
  Status UnmapRun(kvm_run* run, size_t size) override {
    if (::munmap(run, size) != 0) return Error::Errno("munmap(kvm_run)", errno);
    return Ok();
  }
  Status Run(int vcpu_fd) override {
    // Not retried: EINTR is the cancellation signal.
    if (::ioctl(vcpu_fd, KVM_RUN, nullptr) >= 0) [[likely]] return Ok();
    return Failed("KVM_RUN", errno);
  }
  Status GetRegs(int vcpu_fd, kvm_regs* regs) override {
    return CallOk("KVM_GET_REGS", vcpu_fd, KVM_GET_REGS, regs);
  }
  Status SetRegs(int vcpu_fd, const kvm_regs& regs) override {
    return CallOk("KVM_SET_REGS", vcpu_fd, KVM_SET_REGS, &regs);
  }
  Status GetSregs(int vcpu_fd, kvm_sregs* sregs) override {
    return CallOk("KVM_GET_SREGS", vcpu_fd, KVM_GET_SREGS, sregs);
  }
  Status SetSregs(int vcpu_fd, const kvm_sregs& sregs) override {
    return CallOk("KVM_SET_SREGS", vcpu_fd, KVM_SET_SREGS, &sregs);
  }
  Status GetFpu(int vcpu_fd, kvm_fpu* fpu) override {
    return CallOk("KVM_GET_FPU", vcpu_fd, KVM_GET_FPU, fpu);
  }
  Status SetFpu(int vcpu_fd, const kvm_fpu& fpu) override {
    return CallOk("KVM_SET_FPU", vcpu_fd, KVM_SET_FPU, &fpu);
  }
  Result<int> GetMsrs(int vcpu_fd, kvm_msrs* msrs) override {
    return Call("KVM_GET_MSRS", vcpu_fd, KVM_GET_MSRS, msrs);
  }
  Result<int> SetMsrs(int vcpu_fd, const kvm_msrs& msrs) override {
    return Call("KVM_SET_MSRS", vcpu_fd, KVM_SET_MSRS, &msrs);
  }
  Status SetCpuid2(int vcpu_fd, const kvm_cpuid2& cpuid) override {
    return CallOk("KVM_SET_CPUID2", vcpu_fd, KVM_SET_CPUID2, &cpuid);
  }
  Status GetCpuid2(int vcpu_fd, kvm_cpuid2* cpuid) override {
    return CallOk("KVM_GET_CPUID2", vcpu_fd, KVM_GET_CPUID2, cpuid);
  }
  Status GetMpState(int vcpu_fd, kvm_mp_state* state) override {
    return CallOk("KVM_GET_MP_STATE", vcpu_fd, KVM_GET_MP_STATE, state);
  }
  Status SetMpState(int vcpu_fd, const kvm_mp_state& state) override {
    return CallOk("KVM_SET_MP_STATE", vcpu_fd, KVM_SET_MP_STATE, &state);
  }
  Status GetXsave(int vcpu_fd, kvm_xsave* xsave) override {
    return CallOk("KVM_GET_XSAVE", vcpu_fd, KVM_GET_XSAVE, xsave);
  }
  Status GetXsave2(int vcpu_fd, kvm_xsave* xsave) override {
    return CallOk("KVM_GET_XSAVE2", vcpu_fd, KVM_GET_XSAVE2, xsave);
  }
  Status SetXsave(int vcpu_fd, const kvm_xsave& xsave) override {
    return CallOk("KVM_SET_XSAVE", vcpu_fd, KVM_SET_XSAVE, &xsave);
  }
  Status GetXcrs(int vcpu_fd, kvm_xcrs* xcrs) override {
    return CallOk("KVM_GET_XCRS", vcpu_fd, KVM_GET_XCRS, xcrs);
  }
  Status SetXcrs(int vcpu_fd, const kvm_xcrs& xcrs) override {
    return CallOk("KVM_SET_XCRS", vcpu_fd, KVM_SET_XCRS, &xcrs);
  }
  Status GetDebugRegs(int vcpu_fd, kvm_debugregs* regs) override {
    return CallOk("KVM_GET_DEBUGREGS", vcpu_fd, KVM_GET_DEBUGREGS, regs);
  }
  Status SetDebugRegs(int vcpu_fd, const kvm_debugregs& regs) override {
    return CallOk("KVM_SET_DEBUGREGS", vcpu_fd, KVM_SET_DEBUGREGS, &regs);
  }
  Status GetLapic(int vcpu_fd, kvm_lapic_state* lapic) override {
    return CallOk("KVM_GET_LAPIC", vcpu_fd, KVM_GET_LAPIC, lapic);
  }
  Status SetLapic(int vcpu_fd, const kvm_lapic_state& lapic) override {
    return CallOk("KVM_SET_LAPIC", vcpu_fd, KVM_SET_LAPIC, &lapic);
  }
  Status GetVcpuEvents(int vcpu_fd, kvm_vcpu_events* events) override {
    return CallOk("KVM_GET_VCPU_EVENTS", vcpu_fd, KVM_GET_VCPU_EVENTS, events);
  }
  Status SetVcpuEvents(int vcpu_fd, const kvm_vcpu_events& events) override {
    return CallOk("KVM_SET_VCPU_EVENTS", vcpu_fd, KVM_SET_VCPU_EVENTS, &events);
  }
};

}  // namespace

std::shared_ptr<KvmIoctl> MakeSystemKvmIoctl() { return std::make_shared<SystemKvmIoctl>(); }

}  // namespace virt::kvm
