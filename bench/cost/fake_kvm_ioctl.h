// FakeKvmIoctl: a KvmIoctl that answers at once, with no kernel, for instruction counting.
#pragma once

#include "virt/kvm/kvm_ioctl.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace virt::cost {

// Answers every ioctl the library makes while opening a hypervisor, creating a partition with
// an irqchip and one vCPU, and driving its hot paths. KVM_RUN returns at once with whatever exit
// the caller prepared in the kvm_run page (run()); KVM_SIGNAL_MSI counts and, when a completion
// eventfd is set, writes it (so a thread can wait for a user-mode dispatch to arrive);
// KVM_SET_GSI_ROUTING only counts. For the state paths it reports what the real-KVM host in
// docs/performance.md has: 40 saveable MSRs and a supported CPUID of kCpuidEntries leaves; the
// vCPU's CPUID is what KVM_SET_CPUID2 gave it. Nothing here is thread-safe except SignalMsi's
// counter, which only the dispatcher thread touches.
class FakeKvmIoctl final : public kvm::KvmIoctl {
 public:
  static constexpr int kKvmFd = 3;
  static constexpr int kVmFd = 10;
  static constexpr int kVcpuFd = 20;
  static constexpr int kRunSize = 2 * 4096;  // struct kvm_run plus one data page
  static constexpr uint32_t kIoDataOffset = 4096;
  static constexpr uint32_t kSaveableMsrs = 40;
  static constexpr uint32_t kCpuidEntries = 48;

  ~FakeKvmIoctl() override { std::free(run_); }

  // The vCPU's kvm_run page (nullptr before the vCPU exists).
  kvm_run* run() const { return run_; }
  // Every KVM_SIGNAL_MSI writes 1 to `fd` from then on (-1: none).
  void set_msi_completion(int fd) { msi_completion_ = fd; }
  uint64_t signal_msi_count() const { return signal_msi_count_; }
  uint64_t routing_push_count() const { return routing_push_count_; }

  Result<int> Open(const char*) override { return kKvmFd; }
  Status Close(int) override { return Ok(); }
  Result<int> GetApiVersion(int) override { return KVM_API_VERSION; }
  Result<int> CheckExtension(int, int capability) override {
    switch (capability) {
      case KVM_CAP_IRQ_ROUTING: return 4096;
      case KVM_CAP_NR_MEMSLOTS: return 32;
      case KVM_CAP_MAX_VCPUS: return 8;
      case KVM_CAP_XSAVE2: return 0;
      case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: return 0;
      case KVM_CAP_PIT2: return 0;
      default: return 1;
    }
  }
  Result<int> GetVcpuMmapSize(int) override { return kRunSize; }
  // Leaves 0..0x1f (sub-leaves 0..3 of 4, 7 and 0xd), then 0x80000000.. up to kCpuidEntries.
  Status GetSupportedCpuid(int, kvm_cpuid2* cpuid) override {
    if (cpuid->nent < kCpuidEntries) return Error::Errno("KVM_GET_SUPPORTED_CPUID", E2BIG);
    uint32_t n = 0;
    for (uint32_t f = 0; f < 0x20 && n < kCpuidEntries; ++f) {
      const bool indexed = f == 4 || f == 7 || f == 0xd;
      for (uint32_t i = 0; i < (indexed ? 4u : 1u) && n < kCpuidEntries; ++i) {
        cpuid->entries[n++] = Leaf(f, i, indexed, f == 0 ? 0x1f : 0x01020304 * (f + 1));
      }
    }
    for (uint32_t f = 0x80000000; n < kCpuidEntries; ++f) {
      cpuid->entries[n++] = Leaf(f, 0, false, f == 0x80000000 ? 0x80000008 : f ^ 0x5a5a);
    }
    cpuid->nent = n;
    return Ok();
  }
  // kSaveableMsrs MSRs from 0x170 on (the TSC, 0x10, is not among them).
  Status GetMsrIndexList(int, kvm_msr_list* list) override {
    if (list->nmsrs < kSaveableMsrs) {
      list->nmsrs = kSaveableMsrs;
      return Error::Errno("KVM_GET_MSR_INDEX_LIST", E2BIG);
    }
    list->nmsrs = kSaveableMsrs;
    for (uint32_t i = 0; i < kSaveableMsrs; ++i) list->indices[i] = 0x170 + i;
    return Ok();
  }
  Status GetMsrFeatureIndexList(int, kvm_msr_list* list) override {
    list->nmsrs = 0;
    return Ok();
  }
  Result<int> CreateVm(int, unsigned long) override { return kVmFd; }
  Status CreateIrqchip(int) override { return Ok(); }
  Status CreatePit2(int, const kvm_pit_config&) override { return Ok(); }
  Status IrqLine(int, const kvm_irq_level&) override { return Ok(); }
  Status SetTssAddr(int, uint64_t) override { return Ok(); }
  Status SetIdentityMapAddr(int, uint64_t) override { return Ok(); }
  Status SetUserMemoryRegion(int, const kvm_userspace_memory_region&) override { return Ok(); }
  Status SetGsiRouting(int, const kvm_irq_routing&) override {
    ++routing_push_count_;
    return Ok();
  }
  Status Irqfd(int, const kvm_irqfd&) override { return Ok(); }
  Result<int> SignalMsi(int, const kvm_msi&) override {
    ++signal_msi_count_;
    if (msi_completion_ >= 0) {
      const uint64_t one = 1;
      if (::write(msi_completion_, &one, sizeof one) != sizeof one) {
        return Error::Errno("write(msi completion)", errno);
      }
    }
    return 1;
  }
  Status Ioeventfd(int, const kvm_ioeventfd&) override { return Ok(); }
  Status GetIrqchip(int, kvm_irqchip*) override { return Ok(); }
  Status SetIrqchip(int, const kvm_irqchip&) override { return Ok(); }
  Status GetPit2(int, kvm_pit_state2*) override { return Ok(); }
  Status SetPit2(int, const kvm_pit_state2&) override { return Ok(); }
  Status GetClock(int, kvm_clock_data*) override { return Ok(); }
  Status SetClock(int, const kvm_clock_data&) override { return Ok(); }
  Status GetDirtyLog(int, const kvm_dirty_log&) override { return Ok(); }
  Status ClearDirtyLog(int, const kvm_clear_dirty_log&) override { return Ok(); }
  Status EnableCap(int, const kvm_enable_cap&) override { return Ok(); }
  Result<int> CreateVcpu(int, unsigned long index) override {
    return kVcpuFd + static_cast<int>(index);
  }
  Result<kvm_run*> MapRun(int, size_t size) override {
    void* p = std::aligned_alloc(4096, size);
    if (p == nullptr) return Error::Errno("aligned_alloc(kvm_run)", ENOMEM);
    std::memset(p, 0, size);
    std::free(run_);
    run_ = static_cast<kvm_run*>(p);
    return run_;
  }
  Status UnmapRun(kvm_run* run, size_t) override {
    if (run == run_) {
      std::free(run_);
      run_ = nullptr;
    }
    return Ok();
  }
  // KVM_RUN: the exit already in the page is the answer.
  Status Run(int) override { return Ok(); }
  Status GetRegs(int, kvm_regs*) override { return Ok(); }
  Status SetRegs(int, const kvm_regs&) override { return Ok(); }
  Status GetSregs(int, kvm_sregs*) override { return Ok(); }
  Status SetSregs(int, const kvm_sregs&) override { return Ok(); }
  Status GetFpu(int, kvm_fpu*) override { return Ok(); }
  Status SetFpu(int, const kvm_fpu&) override { return Ok(); }
  Result<int> GetMsrs(int, kvm_msrs* msrs) override { return static_cast<int>(msrs->nmsrs); }
  Result<int> SetMsrs(int, const kvm_msrs& msrs) override { return static_cast<int>(msrs.nmsrs); }
  Status SetCpuid2(int, const kvm_cpuid2& cpuid) override {
    if (cpuid.nent > kMaxEntries) return Error::Errno("KVM_SET_CPUID2", E2BIG);
    vcpu_cpuid_nent_ = cpuid.nent;
    std::memcpy(vcpu_cpuid_, cpuid.entries, cpuid.nent * sizeof(kvm_cpuid_entry2));
    return Ok();
  }
  Status GetCpuid2(int, kvm_cpuid2* cpuid) override {
    if (cpuid->nent < vcpu_cpuid_nent_) return Error::Errno("KVM_GET_CPUID2", E2BIG);
    cpuid->nent = vcpu_cpuid_nent_;
    std::memcpy(cpuid->entries, vcpu_cpuid_, vcpu_cpuid_nent_ * sizeof(kvm_cpuid_entry2));
    return Ok();
  }
  Status GetMpState(int, kvm_mp_state*) override { return Ok(); }
  Status SetMpState(int, const kvm_mp_state&) override { return Ok(); }
  Status GetXsave(int, kvm_xsave*) override { return Ok(); }
  Status GetXsave2(int, kvm_xsave*) override { return Ok(); }
  Status SetXsave(int, const kvm_xsave&) override { return Ok(); }
  Status GetXcrs(int, kvm_xcrs*) override { return Ok(); }
  Status SetXcrs(int, const kvm_xcrs&) override { return Ok(); }
  Status GetDebugRegs(int, kvm_debugregs*) override { return Ok(); }
  Status SetDebugRegs(int, const kvm_debugregs&) override { return Ok(); }
  Status GetLapic(int, kvm_lapic_state*) override { return Ok(); }
  Status SetLapic(int, const kvm_lapic_state&) override { return Ok(); }
  Status GetVcpuEvents(int, kvm_vcpu_events*) override { return Ok(); }
  Status SetVcpuEvents(int, const kvm_vcpu_events&) override { return Ok(); }

 private:
  static constexpr uint32_t kMaxEntries = 256;
  static kvm_cpuid_entry2 Leaf(uint32_t function, uint32_t index, bool indexed, uint32_t eax) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e.eax = eax, e.ebx = eax >> 1, e.ecx = eax >> 2, e.edx = eax >> 3;
    return e;
  }

  kvm_run* run_ = nullptr;
  kvm_cpuid_entry2 vcpu_cpuid_[kMaxEntries] = {};
  uint32_t vcpu_cpuid_nent_ = 0;
  int msi_completion_ = -1;
  uint64_t signal_msi_count_ = 0;
  uint64_t routing_push_count_ = 0;
};

}  // namespace virt::cost
