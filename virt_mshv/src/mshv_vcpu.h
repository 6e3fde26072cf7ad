// MshvVcpu: an MSHV vp fd: MSHV_RUN_VP, intercept completion through hypercalls, cancel, CPUID,
// MP state, whole-state save and restore.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>

#include "mshv_cpuid_intercepts.h"
#include "mshv_fd.h"
#include "mshv_message.h"
#include "mshv_vcpu_cpuid.h"
#include "mshv_vcpu_mp_state.h"
#include "mshv_vcpu_state.h"
#include "virt/vcpu.h"

namespace virt::mshv {

// MSHV does not advance RIP on intercepts: the vCPU does it with HVCALL_SET_VP_REGISTERS when an
// access completes: at once for OUT and MMIO writes (in the same call, nothing else to do), in
// CompleteIoIn / CompleteMmioRead for reads, together with the destination register.
//
// SMP: with the LAPIC (MSHV_PT_BIT_LAPIC) the hypervisor creates every VP but 0 in
// StartupSuspend and its LAPIC performs INIT/SIPI itself (this backend installs no
// HV_INTERCEPT_TYPE_X64_APIC_INIT_SIPI, so no HVMSG_X64_SIPI_INTERCEPT reaches the VMM). An
// AP's MSHV_RUN_VP sleeps in the kernel until the SIPI has set CS = vector << 8 (base vector <<
// 12), RIP = 0 and cleared StartupSuspend; it then returns the AP's first intercept. A signal
// (Cancel) makes it return EINTR, like any run.
class MshvVcpu final : public Vcpu {
 public:
  // MSHV_CREATE_VP {index} on the partition fd. The vp fd is closed again on failure.
  // `intercepts` is the partition's CPUID intercept set (see MshvVcpuCpuid); `lapic`: the
  // partition has the hypervisor's LAPIC (MSHV_PT_BIT_LAPIC), so its state is saveable.
  static Result<std::unique_ptr<MshvVcpu>> Create(std::shared_ptr<MshvIoctl> ioctl,
                                                  int partition_fd, uint32_t index,
                                                  std::shared_ptr<MshvCpuidIntercepts> intercepts,
                                                  bool lapic);
  ~MshvVcpu() override = default;

  uint32_t index() const override { return index_; }
  // MSHV_RUN_VP until a message for the VMM, decoded with DecodeMessage. An IN or MMIO read left
  // unanswered completes with all-ones (an empty bus) before the guest runs again. String port
  // I/O and MMIO instructions the decoder rejects return UnsupportedInstructionExit. CPUID
  // intercepts are answered inside (MshvVcpuCpuid::Complete) and never returned.
  Result<VcpuExit> Run() override;
  // HVCALL_SET_VP_REGISTERS {RAX merged with the data, RIP + instruction length}.
  Status CompleteIoIn(std::span<const uint8_t> data) override;
  // HVCALL_GET_VP_REGISTERS of the destination when 8/16-bit (its other bits survive), then
  // HVCALL_SET_VP_REGISTERS {destination, RIP + instruction length}.
  Status CompleteMmioRead(uint64_t value) override;
  // Sets the cancel flag and, while a Run is inside MSHV_RUN_VP on another thread, signals that
  // thread (MSHV_RUN_VP returns EINTR) until it has left the ioctl, so a signal that lands just
  // before the ioctl starts is not lost. Returns without waiting when called on the run thread.
  void Cancel() override;

  // HVCALL_GET/SET_VP_REGISTERS with RAX..R15, RIP, RFLAGS (18 registers, one call).
  Result<Registers> GetRegisters() override;
  Status SetRegisters(const Registers& regs) override;
  // HVCALL_GET/SET_VP_REGISTERS with the 8 segments, GDTR, IDTR, CR0/2/3/4/8, EFER, APIC_BASE.
  Result<SpecialRegisters> GetSpecialRegisters() override;
  Status SetSpecialRegisters(const SpecialRegisters& sregs) override;
  // MSHV_GET_VP_STATE(XSAVE): the legacy (FXSAVE) region of the XSAVE area. SetFpu reads the area,
  // replaces that region and writes it back with MSHV_SET_VP_STATE (AVX state is kept).
  Result<FpuState> GetFpu() override;
  Status SetFpu(const FpuState& fpu) override;
  // MSRs with a Hyper-V register name (TSC 0x10, APIC_BASE 0x1b, EFER 0xc0000080 and
  // kSaveableMsrs of mshv_msr_names.h) in one
  // HVCALL_GET/SET_VP_REGISTERS; any other index fails (kInvalidArgument, naming it) before
  // the call.
  Status GetMsrs(std::span<MsrEntry> msrs) override;
  Status SetMsrs(std::span<const MsrEntry> msrs) override;

  // The vCPU's CPUID table (MshvVcpuCpuid) and MP state (MshvVcpuMpState); never nullptr.
  VcpuCpuid* cpuid() override { return &cpuid_; }
  VcpuMpState* mp_state() override { return &mp_state_; }
  // Save and restore of every part (MshvVcpuState); never nullptr.
  VcpuStateControl* state() override { return &state_; }

  // The signal that kicks a vCPU thread out of MSHV_RUN_VP (SIGRTMIN + 3; its handler does
  // nothing). A VMM that uses that signal itself must not block it on vCPU threads.
  static int KickSignal();

  // XSAVE buffer size passed to MSHV_GET/SET_VP_STATE (4 pages, page aligned).
  static constexpr size_t kXsaveBufferSize = 4 * 4096;

 private:
  enum class Pending : uint8_t { kNone, kIoIn, kMmioRead };

  MshvVcpu(std::shared_ptr<MshvIoctl> ioctl, MshvFd fd, uint32_t index,
           std::shared_ptr<MshvCpuidIntercepts> intercepts, bool lapic);
  // Turns a decoded intercept into the exit the VMM sees (and advances RIP for writes).
  Result<VcpuExit> HandleIo(const IoPortIntercept& io);
  Result<VcpuExit> HandleMemory(const MemoryIntercept& mem);
  Status SetRegisterAndRip(uint32_t name, uint64_t value, uint64_t rip);
  Status AdvanceRip(uint64_t rip);
  Status CompletePendingWithAllOnes();

  std::shared_ptr<MshvIoctl> ioctl_;
  MshvFd fd_;
  uint32_t index_;
  mshv_run_vp run_{};
  MshvVcpuCpuid cpuid_;
  MshvVcpuMpState mp_state_;
  MshvVcpuState state_;  // after cpuid_ and mp_state_, which it uses

  // The intercept being completed (run thread only).
  Pending pending_ = Pending::kNone;
  IoPortIntercept pending_io_;
  MmioInstruction pending_mmio_;
  uint64_t pending_rip_ = 0;
  std::array<uint8_t, 4> io_data_{};  // IoExit::data of the last port access

  // Cancel protocol, lock-free on Run's path (as KvmVcpu's). run_state_ holds kInRun (the runner
  // is between its cancel check and the end of MSHV_RUN_VP), kCancel (a Cancel not yet
  // consumed) and, in units of kKicker, the Cancels that saw kInRun and signal runner_. Run sets
  // kInRun and reads kCancel in one RMW, Cancel the reverse, so one sees the other. A kicker
  // signals under kick_mu_ after re-reading run_state_, again every millisecond until the runner
  // has consumed the cancel or left (MSHV has no immediate_exit, so a signal that lands before
  // the ioctl sleeps is lost); a runner leaving MSHV_RUN_VP while kickers are counted takes
  // kick_mu_ and notifies left_run_, so no signal reaches a thread that has left Run.
  uint32_t LeaveRun(uint32_t also_clear);
  static constexpr uint32_t kInRun = 1;
  static constexpr uint32_t kCancel = 2;
  static constexpr uint32_t kKicker = 4;
  std::atomic<uint32_t> run_state_{0};
  std::atomic<pthread_t> runner_{};  // the thread in Run; published by the kInRun RMW
  std::mutex kick_mu_;               // slow path only: kickers and a runner leaving past them
  std::condition_variable left_run_;
};

}  // namespace virt::mshv
