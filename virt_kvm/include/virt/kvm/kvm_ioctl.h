// KvmIoctl: one thin virtual method per KVM ioctl the backend uses, and nothing else.
#pragma once

#include "virt/kvm/kvm_uapi.h"

#include <cstddef>
#include <cstdint>
#include <memory>

#include "virt/result.h"

namespace virt::kvm {

// The seam between the KVM backend and the kernel. Each method makes exactly one system call
// (named in its comment), returns its result or {operation, errno}, and has no policy. The
// backend receives it in its constructor; tests pass a GoogleMock. Implementations must be
// thread-safe (the real one is stateless).
class KvmIoctl {
 public:
  virtual ~KvmIoctl() = default;

  // open(path, O_RDWR | O_CLOEXEC) -> the /dev/kvm fd.
  virtual Result<int> Open(const char* path) = 0;
  // close(fd). Errors are reported but the fd is gone either way.
  virtual Status Close(int fd) = 0;

  // KVM_GET_API_VERSION on the /dev/kvm fd (12 for every supported kernel).
  virtual Result<int> GetApiVersion(int kvm_fd) = 0;
  // KVM_CHECK_EXTENSION on the /dev/kvm or a VM fd -> 0 when absent, else the capability value.
  virtual Result<int> CheckExtension(int fd, int capability) = 0;
  // KVM_GET_VCPU_MMAP_SIZE on the /dev/kvm fd.
  virtual Result<int> GetVcpuMmapSize(int kvm_fd) = 0;
  // KVM_GET_SUPPORTED_CPUID on the /dev/kvm fd; cpuid->nent is the capacity on entry.
  virtual Status GetSupportedCpuid(int kvm_fd, kvm_cpuid2* cpuid) = 0;
  // KVM_GET_MSR_INDEX_LIST on the /dev/kvm fd (the MSRs KVM saves and restores);
  // list->nmsrs is the capacity on entry (E2BIG with the needed count when too small).
  virtual Status GetMsrIndexList(int kvm_fd, kvm_msr_list* list) = 0;
  // KVM_GET_MSR_FEATURE_INDEX_LIST on the /dev/kvm fd (feature MSRs), the same way.
  virtual Status GetMsrFeatureIndexList(int kvm_fd, kvm_msr_list* list) = 0;

  // KVM_CREATE_VM -> the VM fd.
  virtual Result<int> CreateVm(int kvm_fd, unsigned long type) = 0;
  // KVM_CREATE_IRQCHIP (in-kernel PIC, IOAPIC and LAPICs).
  virtual Status CreateIrqchip(int vm_fd) = 0;
  // KVM_CREATE_PIT2 (in-kernel i8254 on ports 0x40-0x43, wired to GSI 0); needs the irqchip.
  virtual Status CreatePit2(int vm_fd, const kvm_pit_config& config) = 0;
  // KVM_IRQ_LINE: sets the level of an irqchip GSI (IOAPIC pin, and PIC pin below 16).
  virtual Status IrqLine(int vm_fd, const kvm_irq_level& level) = 0;
  // KVM_SET_TSS_ADDR (three pages the guest never uses; needed on Intel).
  virtual Status SetTssAddr(int vm_fd, uint64_t address) = 0;
  // KVM_SET_IDENTITY_MAP_ADDR (one page the guest never uses; needed on Intel).
  virtual Status SetIdentityMapAddr(int vm_fd, uint64_t address) = 0;
  // KVM_SET_USER_MEMORY_REGION (memory_size 0 deletes the slot).
  virtual Status SetUserMemoryRegion(int vm_fd, const kvm_userspace_memory_region& region) = 0;
  // KVM_SET_GSI_ROUTING: replaces the VM's whole routing table.
  virtual Status SetGsiRouting(int vm_fd, const kvm_irq_routing& routing) = 0;
  // KVM_IRQFD: assign (flags 0) or deassign (KVM_IRQFD_FLAG_DEASSIGN) an eventfd to a GSI.
  virtual Status Irqfd(int vm_fd, const kvm_irqfd& irqfd) = 0;
  // KVM_SIGNAL_MSI -> > 0 delivered, 0 blocked by the guest.
  virtual Result<int> SignalMsi(int vm_fd, const kvm_msi& msi) = 0;
  // KVM_IOEVENTFD: assign or deassign an eventfd to a PIO/MMIO address.
  virtual Status Ioeventfd(int vm_fd, const kvm_ioeventfd& ioeventfd) = 0;
  // KVM_GET_IRQCHIP / KVM_SET_IRQCHIP: one of the PIC master (0), PIC slave (1), IOAPIC (2).
  virtual Status GetIrqchip(int vm_fd, kvm_irqchip* chip) = 0;
  virtual Status SetIrqchip(int vm_fd, const kvm_irqchip& chip) = 0;
  // KVM_GET_PIT2 / KVM_SET_PIT2.
  virtual Status GetPit2(int vm_fd, kvm_pit_state2* pit) = 0;
  virtual Status SetPit2(int vm_fd, const kvm_pit_state2& pit) = 0;
  // KVM_GET_CLOCK / KVM_SET_CLOCK (kvmclock).
  virtual Status GetClock(int vm_fd, kvm_clock_data* clock) = 0;
  virtual Status SetClock(int vm_fd, const kvm_clock_data& clock) = 0;
  // KVM_GET_DIRTY_LOG: the slot's bitmap into log.dirty_bitmap (cleared by KVM unless manual
  // protection is on).
  virtual Status GetDirtyLog(int vm_fd, const kvm_dirty_log& log) = 0;
  // KVM_CLEAR_DIRTY_LOG: clears (and re-protects) the pages whose bits are set.
  virtual Status ClearDirtyLog(int vm_fd, const kvm_clear_dirty_log& log) = 0;
  // KVM_ENABLE_CAP on the VM fd.
  virtual Status EnableCap(int vm_fd, const kvm_enable_cap& cap) = 0;

  // KVM_CREATE_VCPU -> the vCPU fd.
  virtual Result<int> CreateVcpu(int vm_fd, unsigned long vcpu_id) = 0;
  // mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED) of the vCPU fd -> its struct kvm_run.
  virtual Result<kvm_run*> MapRun(int vcpu_fd, size_t size) = 0;
  // munmap of a MapRun result.
  virtual Status UnmapRun(kvm_run* run, size_t size) = 0;
  // KVM_RUN. EINTR when kicked by a signal or immediate_exit.
  virtual Status Run(int vcpu_fd) = 0;
  // KVM_GET_REGS / KVM_SET_REGS.
  virtual Status GetRegs(int vcpu_fd, kvm_regs* regs) = 0;
  virtual Status SetRegs(int vcpu_fd, const kvm_regs& regs) = 0;
  // KVM_GET_SREGS / KVM_SET_SREGS.
  virtual Status GetSregs(int vcpu_fd, kvm_sregs* sregs) = 0;
  virtual Status SetSregs(int vcpu_fd, const kvm_sregs& sregs) = 0;
  // KVM_GET_FPU / KVM_SET_FPU.
  virtual Status GetFpu(int vcpu_fd, kvm_fpu* fpu) = 0;
  virtual Status SetFpu(int vcpu_fd, const kvm_fpu& fpu) = 0;
  // KVM_GET_MSRS / KVM_SET_MSRS -> number of MSRs processed (stops at the first refused one).
  virtual Result<int> GetMsrs(int vcpu_fd, kvm_msrs* msrs) = 0;
  virtual Result<int> SetMsrs(int vcpu_fd, const kvm_msrs& msrs) = 0;
  // KVM_SET_CPUID2.
  virtual Status SetCpuid2(int vcpu_fd, const kvm_cpuid2& cpuid) = 0;
  // KVM_GET_CPUID2; cpuid->nent is the capacity on entry (E2BIG when too small), the count after.
  virtual Status GetCpuid2(int vcpu_fd, kvm_cpuid2* cpuid) = 0;
  // KVM_GET_MP_STATE / KVM_SET_MP_STATE.
  virtual Status GetMpState(int vcpu_fd, kvm_mp_state* state) = 0;
  virtual Status SetMpState(int vcpu_fd, const kvm_mp_state& state) = 0;
  // KVM_GET_XSAVE (4 KiB) / KVM_GET_XSAVE2 (KVM_CAP_XSAVE2's size, the buffer behind `xsave`
  // must be that large) / KVM_SET_XSAVE (reads as many bytes as KVM_CAP_XSAVE2 says).
  virtual Status GetXsave(int vcpu_fd, kvm_xsave* xsave) = 0;
  virtual Status GetXsave2(int vcpu_fd, kvm_xsave* xsave) = 0;
  virtual Status SetXsave(int vcpu_fd, const kvm_xsave& xsave) = 0;
  // KVM_GET_XCRS / KVM_SET_XCRS.
  virtual Status GetXcrs(int vcpu_fd, kvm_xcrs* xcrs) = 0;
  virtual Status SetXcrs(int vcpu_fd, const kvm_xcrs& xcrs) = 0;
  // KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS.
  virtual Status GetDebugRegs(int vcpu_fd, kvm_debugregs* regs) = 0;
  virtual Status SetDebugRegs(int vcpu_fd, const kvm_debugregs& regs) = 0;
  // KVM_GET_LAPIC / KVM_SET_LAPIC (the 1 KiB register page).
  virtual Status GetLapic(int vcpu_fd, kvm_lapic_state* lapic) = 0;
  virtual Status SetLapic(int vcpu_fd, const kvm_lapic_state& lapic) = 0;
  // KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS.
  virtual Status GetVcpuEvents(int vcpu_fd, kvm_vcpu_events* events) = 0;
  virtual Status SetVcpuEvents(int vcpu_fd, const kvm_vcpu_events& events) = 0;
};

// The real implementation: ioctl(2), open(2), mmap(2). Stateless and thread-safe.
std::shared_ptr<KvmIoctl> MakeSystemKvmIoctl();

}  // namespace virt::kvm
