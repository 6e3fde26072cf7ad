// KvmVcpu: a KVM vCPU fd with its mmapped kvm_run, exit decoding and cross-thread cancel.
#pragma once

#include <pthread.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "kvm_fd.h"
#include "kvm_state_scratch.h"
#include "virt/cpuid.h"
#include "virt/vcpu.h"
#include "virt/vcpu_state_control.h"

namespace virt::kvm {

// What a partition knows that its vCPUs need.
struct KvmVcpuConfig {
  int mmap_size = 0;        // KVM_GET_VCPU_MMAP_SIZE
  bool mp_state = false;    // KVM_CAP_MP_STATE
  // KVM_CAP_XSAVE2 on the VM fd: the XSAVE area size for KVM_GET_XSAVE2 (0: KVM_GET_XSAVE with
  // 4 KiB, an older kernel).
  uint32_t xsave2_size = 0;
  // The MSRs a state save reads (KVM_GET_MSR_INDEX_LIST plus the feature MSRs, without the TSC,
  // which is its own part); shared by every vCPU of the partition.
  std::shared_ptr<const std::vector<uint32_t>> saveable_msrs;
};

class KvmVcpu final : public Vcpu, public VcpuCpuid, public VcpuMpState, public PartwiseVcpuState {
 public:
  // KVM_CREATE_VCPU, mmap of kvm_run, KVM_SET_CPUID2 with `cpuid` (the partition's default for
  // this index; skipped when empty). Everything is released again on failure.
  static Result<std::unique_ptr<KvmVcpu>> Create(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                 uint32_t index, const KvmVcpuConfig& config,
                                                 const Cpuid& cpuid);
  ~KvmVcpu() override;

  uint32_t index() const override { return index_; }
  Result<VcpuExit> Run() override;
  Status CompleteIoIn(std::span<const uint8_t> data) override;
  Status CompleteMmioRead(uint64_t value) override;
  void Cancel() override;

  Result<Registers> GetRegisters() override;
  Status SetRegisters(const Registers& regs) override;
  Result<SpecialRegisters> GetSpecialRegisters() override;
  Status SetSpecialRegisters(const SpecialRegisters& sregs) override;
  Result<FpuState> GetFpu() override;
  Status SetFpu(const FpuState& fpu) override;
  Status GetMsrs(std::span<MsrEntry> msrs) override;
  Status SetMsrs(std::span<const MsrEntry> msrs) override;
  VcpuCpuid* cpuid() override { return this; }
  VcpuMpState* mp_state() override { return config_.mp_state ? this : nullptr; }
  VcpuStateControl* state() override { return this; }

  // VcpuCpuid. KVM_GET_CPUID2 (capacity 256 entries, KVM's maximum).
  Result<Cpuid> GetCpuid() override;
  // KVM_SET_CPUID2. kFailedPrecondition once Run has entered KVM_RUN; kInvalidArgument for an
  // empty table or more than 256 entries (before any ioctl). KVM keeps the old table when it
  // refuses the new one.
  Status SetCpuid(const Cpuid& cpuid) override;

  // VcpuMpState. KVM_GET_MP_STATE / KVM_SET_MP_STATE with KVM_MP_STATE_RUNNABLE,
  // _UNINITIALIZED, _INIT_RECEIVED, _HALTED, _SIPI_RECEIVED; another state read back (e.g.
  // AP_RESET_HOLD of SEV-ES) gives kUnavailable with its number.
  Result<MpState> GetMpState() override;
  Status SetMpState(MpState state) override;

  // VcpuStateControl: every part. CPUID (KVM_GET/SET_CPUID2; a restore of the table the vCPU
  // already has is a no-op, so a vCPU that has run accepts its own state back), the saveable
  // MSRs (KVM_GET/SET_MSRS; an MSR this vCPU refuses on save is left out of its list from then
  // on), KVM_GET/SET_SREGS and _REGS, _XCRS, XSAVE (KVM_GET_XSAVE2 with KVM_CAP_XSAVE2's size,
  // else KVM_GET_XSAVE; KVM_SET_XSAVE), _DEBUGREGS, _MP_STATE, _LAPIC (1 KiB), _VCPU_EVENTS
  // (NMI, SIPI vector, interrupt shadow and SMM fields valid), and the TSC (MSR 0x10, last).
  std::span<const VcpuStatePart> supported_parts() const override;

  // The signal used to kick a vCPU thread out of KVM_RUN (SIGRTMIN + 3 by default; its handler
  // does nothing). A VMM that uses that signal itself must not block it on vCPU threads.
  static int KickSignal();

 private:
  enum class Pending : uint8_t { kNone, kIoIn, kMmioRead };

  KvmVcpu(std::shared_ptr<KvmIoctl> ioctl, KvmFd fd, kvm_run* run, uint32_t index,
          const KvmVcpuConfig& config);

  std::string_view backend_name() const override { return "kvm"; }
  Status SavePart(VcpuStatePart part, VcpuState& into) override;
  Status LoadPart(VcpuStatePart part, const VcpuState& from) override;
  // All parts of a save or restore in one call (no virtual call per part).
  Status SaveParts(std::span<const VcpuStatePart> parts, VcpuState& into,
                   size_t& failed) override;
  Status LoadParts(std::span<const VcpuStatePart> parts, const VcpuState& from,
                   size_t& failed) override;
  // The one part's ioctl and conversion, inlined into the two kinds of callers above.
  [[gnu::always_inline]] inline Status SaveOne(VcpuStatePart part, VcpuState& into);
  [[gnu::always_inline]] inline Status LoadOne(VcpuStatePart part, const VcpuState& from);
  // KVM_GET_REGS / KVM_GET_SREGS straight into `out` (a state save's part, or GetRegisters').
  Status ReadRegisters(Registers& out);
  Status ReadSpecialRegisters(SpecialRegisters& out);
  Status SaveMsrs(VcpuState& into);
  Status SaveXsave(VcpuState& into);
  Status LoadXsave(const std::vector<uint8_t>& bytes);
  Status LoadCpuid(const Cpuid& cpuid);
  VcpuExit Decode();

  std::shared_ptr<KvmIoctl> ioctl_;
  KvmFd fd_;
  kvm_run* run_;
  size_t run_size_;  // config_.mmap_size
  uint32_t index_;
  Pending pending_ = Pending::kNone;
  bool entered_ = false;  // KVM_RUN was called once: CPUID is frozen (run thread only)
  const KvmVcpuConfig config_;
  std::vector<uint32_t> msrs_;  // the saveable MSRs this vCPU accepts (state calls only)
  KvmCpuidScratch cpuid_scratch_;  // KVM_GET_CPUID2 buffer and its last conversion
  KvmMsrScratch msr_scratch_;      // KVM_GET/SET_MSRS buffer (vCPU thread only)
  KvmMsrScratch msr_request_;      // a state save's KVM_GET_MSRS of msrs_ (state calls only)
  bool msr_request_filled_ = false;  // msr_request_ holds msrs_'s indices

  // Cancel protocol, lock-free on Run's path. state_ holds kInRun (the runner is between its
  // cancel check and the end of KVM_RUN), kCancel (a Cancel not yet consumed) and, in units of
  // kKicker, the Cancels that saw kInRun and may signal runner_. Run sets kInRun and reads
  // kCancel in one RMW, Cancel sets kCancel and reads kInRun in one RMW, so one of them sees the
  // other. A kicker signals only under kick_mu_ after re-reading kInRun; a runner that leaves
  // KVM_RUN while kickers are counted takes kick_mu_ once, so no signal is sent to a thread
  // that has left Run (and may have exited).
  uint32_t LeaveRun(uint32_t also_clear);
  static constexpr uint32_t kInRun = 1;
  static constexpr uint32_t kCancel = 2;
  static constexpr uint32_t kKicker = 4;
  std::atomic<uint32_t> state_{0};
  std::atomic<pthread_t> runner_{};  // the thread in Run; published by the kInRun RMW
  std::mutex kick_mu_;               // held by a kicker while it signals (slow path only)
};

}  // namespace virt::kvm
