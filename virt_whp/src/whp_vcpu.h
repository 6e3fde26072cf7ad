// WhpVcpu: a WHP virtual processor: run with decoded exits, access completion, registers, cancel.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "virt/vcpu.h"
#include "virt/x86_mmio_decoder.h"
#include "whp_cpuid_policy.h"
#include "whp_mp_state.h"
#include "whp_partition.h"
#include "whp_vcpu_cpuid.h"
#include "whp_vcpu_state.h"

namespace virt::whp {

// WHP does not advance RIP on exits: the vCPU does, with one WHvSetVirtualProcessorRegisters
// per completed access: at once for OUT and MMIO writes, in CompleteIoIn / CompleteMmioRead for
// reads (together with the destination register). CPUID exits are answered inside Run from the
// vCPU's table (WhpVcpuCpuid) and never reach the VMM.
//
// SMP with irqchip (WHP's LAPIC emulation): an application processor (index > 0) is parked in
// StartupSuspend when created, so WHvRunVirtualProcessor keeps it inside the hypervisor until
// WHP's LAPIC applies a SIPI. The boot processor's INIT and SIPI ICR writes trap
// (X64ApicInitSipiTrap, see WhpPartition); its Run delivers them with WHvRequestInterrupt
// (InitSipiControls) and goes on running the guest, so neither vCPU's VMM sees an exit for it.
class WhpVcpu final : public Vcpu {
 public:
  // Claims `index` on the partition, then WHvCreateVirtualProcessor(index, 0); with `irqchip`
  // and index > 0, WHvSetVirtualProcessorRegisters {WHvRegisterInternalActivityState =
  // StartupSuspend} (WHP parks APs so itself under LAPIC emulation; the backend does not rely
  // on it). On failure the VP is deleted again and the claim dropped. `vcpu_count` bounds the
  // INIT/SIPI shorthands.
  static Result<std::unique_ptr<WhpVcpu>> Create(std::shared_ptr<WhpPartitionHandle> partition,
                                                 uint32_t index, uint32_t vcpu_count,
                                                 bool irqchip,
                                                 std::shared_ptr<WhpCpuidPolicy> cpuid);
  // WHvDeleteVirtualProcessor (a failure goes to stderr) and releases the index.
  ~WhpVcpu() override;

  uint32_t index() const override { return index_; }
  // WHvRunVirtualProcessor until an exit for the VMM. An IN or MMIO read left unanswered
  // completes with all-ones before the guest runs again. String/REP port I/O and MMIO
  // instructions the decoder rejects return UnsupportedInstructionExit (RIP not advanced).
  // Exit mapping: X64IoPortAccess -> IoExit, MemoryAccess -> MmioExit, X64Halt -> HaltExit,
  // UnrecoverableException -> ShutdownExit, InvalidVpRegisterValue / UnsupportedFeature ->
  // InternalErrorExit {suberror = exit reason}, Canceled -> CancelledExit, others -> UnknownExit.
  // Handled inside and not returned: CPUID, X64ApicInitSipiTrap (an ICR that is neither INIT nor
  // SIPI gives InternalErrorExit {suberror 0x1006, data[0] = ICR}) and WHvRunVpExitReasonNone
  // (the run ended with nothing to report: it runs again).
  Result<VcpuExit> Run() override;
  // WHvSetVirtualProcessorRegisters {RAX merged with the data, RIP + instruction length}.
  Status CompleteIoIn(std::span<const uint8_t> data) override;
  // WHvGetVirtualProcessorRegisters of the destination when 8/16-bit, then
  // WHvSetVirtualProcessorRegisters {destination, RIP + instruction length}.
  Status CompleteMmioRead(uint64_t value) override;
  // WHvCancelRunVirtualProcessor. The flag is sticky in WHP: a cancel while the vCPU is not in
  // Run makes the next Run return CancelledExit at once, and that return consumes it. A cancel
  // that races with another exit is reported by the following Run. Failures go to stderr.
  void Cancel() override;

  // WHvGet/SetVirtualProcessorRegisters with RAX..R15, RIP, RFLAGS (18 registers, one call).
  Result<Registers> GetRegisters() override;
  Status SetRegisters(const Registers& regs) override;
  // One call with ES, CS, SS, DS, FS, GS, LDTR, TR, IDTR, GDTR, CR0, CR2, CR3, CR4, CR8, EFER,
  // APIC_BASE. WHP segments have no "unusable" bit: unusable reads back as !present, and an
  // unusable segment is written not present.
  Result<SpecialRegisters> GetSpecialRegisters() override;
  Status SetSpecialRegisters(const SpecialRegisters& sregs) override;
  // One call with FpMmx0-7, FpControlStatus, XmmControlStatus, Xmm0-15.
  Result<FpuState> GetFpu() override;
  Status SetFpu(const FpuState& fpu) override;
  // MSRs with a WHP register name (TSC, APIC_BASE, EFER, PAT, SYSENTER_CS/ESP/EIP, STAR, LSTAR,
  // CSTAR, SFMASK, KERNEL_GS_BASE, TSC_AUX, the MTRRs: whp_msr_names.h) in one call; any other index fails
  // (kInvalidArgument, naming it) before the call.
  Status GetMsrs(std::span<MsrEntry> msrs) override;
  Status SetMsrs(std::span<const MsrEntry> msrs) override;

  // Per-vCPU CPUID tables (WhpVcpuCpuid); nullptr when the host cannot tell what a VP presents
  // (no WHvGetVirtualProcessorCpuidOutput).
  VcpuCpuid* cpuid() override;
  // WhpVcpuMpState; nullptr without irqchip (no LAPIC, no INIT/SIPI).
  VcpuMpState* mp_state() override;
  // WhpVcpuState (issue 12); never nullptr.
  VcpuStateControl* state() override { return &*state_; }

 private:
  enum class Pending : uint8_t { kNone, kIoIn, kMmioRead };

  WhpVcpu(std::shared_ptr<WhpPartitionHandle> partition, uint32_t index, uint32_t vcpu_count,
          bool irqchip, std::shared_ptr<WhpCpuidPolicy> cpuid);
  Result<VcpuExit> HandleIo(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  Result<VcpuExit> HandleMemory(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  Status HandleCpuid(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  // Delivers a trapped INIT/SIPI; nullopt when done, else the exit to return.
  Result<std::optional<VcpuExit>> HandleInitSipi(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  Status GetRegs(std::span<const WHV_REGISTER_NAME> names, std::span<WHV_REGISTER_VALUE> values);
  Status SetRegs(std::span<const WHV_REGISTER_NAME> names,
                 std::span<const WHV_REGISTER_VALUE> values);
  Status SetRegisterAndRip(WHV_REGISTER_NAME name, uint64_t value, uint64_t rip);
  Status CompletePendingWithAllOnes();

  std::shared_ptr<WhpPartitionHandle> partition_;
  uint32_t index_;
  uint32_t vcpu_count_;
  std::shared_ptr<WhpCpuidPolicy> policy_;
  WhpVcpuCpuid cpuid_;
  std::optional<WhpVcpuMpState> mp_state_;  // with irqchip
  std::optional<WhpVcpuState> state_;       // after cpuid_ and mp_state_, which it uses

  // The access being completed (run thread only).
  Pending pending_ = Pending::kNone;
  uint8_t pending_io_size_ = 0;
  uint64_t pending_io_rax_ = 0;
  MmioInstruction pending_mmio_;
  uint64_t pending_rip_ = 0;  // RIP after the instruction
  std::array<uint8_t, 4> io_data_{};  // IoExit::data of the last port access
};

}  // namespace virt::whp
