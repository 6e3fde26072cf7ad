// WhpVcpu: a WHP virtual processor: run with decoded exits, access completion, registers, cancel.
#pragma once

#include <array>
#include <memory>
#include <span>
#include <vector>

#include "virt/vcpu.h"
#include "virt/x86_mmio_decoder.h"
#include "whp_partition.h"

namespace virt::whp {

// WHP does not advance RIP on exits: the vCPU does, with one WHvSetVirtualProcessorRegisters
// per completed access: at once for OUT and MMIO writes, in CompleteIoIn / CompleteMmioRead for
// reads (together with the destination register). CPUID exits (leaf 0x15, see WhpPartition)
// are answered inside Run from the partition's result list and never reach the VMM.
class WhpVcpu final : public Vcpu {
 public:
  // Claims `index` on the partition, then WHvCreateVirtualProcessor(index, 0); the claim is
  // dropped again on failure.
  static Result<std::unique_ptr<WhpVcpu>> Create(std::shared_ptr<WhpPartitionHandle> partition,
                                                 uint32_t index,
                                                 std::vector<WHV_X64_CPUID_RESULT> cpuid);
  // WHvDeleteVirtualProcessor (a failure goes to stderr) and releases the index.
  ~WhpVcpu() override;

  uint32_t index() const override { return index_; }
  // WHvRunVirtualProcessor until an exit for the VMM. An IN or MMIO read left unanswered
  // completes with all-ones before the guest runs again. String/REP port I/O and MMIO
  // instructions the decoder rejects return UnsupportedInstructionExit (RIP not advanced).
  // Exit mapping: X64IoPortAccess -> IoExit, MemoryAccess -> MmioExit, X64Halt -> HaltExit,
  // UnrecoverableException -> ShutdownExit, InvalidVpRegisterValue / UnsupportedFeature ->
  // InternalErrorExit {suberror = exit reason}, Canceled -> CancelledExit, others -> UnknownExit.
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
  // CSTAR, SFMASK, KERNEL_GS_BASE, TSC_AUX) in one call; any other index fails
  // (kInvalidArgument, naming it) before the call.
  Status GetMsrs(std::span<MsrEntry> msrs) override;
  Status SetMsrs(std::span<const MsrEntry> msrs) override;

 private:
  enum class Pending : uint8_t { kNone, kIoIn, kMmioRead };

  WhpVcpu(std::shared_ptr<WhpPartitionHandle> partition, uint32_t index,
          std::vector<WHV_X64_CPUID_RESULT> cpuid);
  Result<VcpuExit> HandleIo(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  Result<VcpuExit> HandleMemory(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  Status HandleCpuid(const WHV_RUN_VP_EXIT_CONTEXT& exit);
  Status GetRegs(std::span<const WHV_REGISTER_NAME> names, std::span<WHV_REGISTER_VALUE> values);
  Status SetRegs(std::span<const WHV_REGISTER_NAME> names,
                 std::span<const WHV_REGISTER_VALUE> values);
  Status SetRegisterAndRip(WHV_REGISTER_NAME name, uint64_t value, uint64_t rip);
  Status CompletePendingWithAllOnes();

  std::shared_ptr<WhpPartitionHandle> partition_;
  uint32_t index_;
  const std::vector<WHV_X64_CPUID_RESULT> cpuid_;

  // The access being completed (run thread only).
  Pending pending_ = Pending::kNone;
  uint8_t pending_io_size_ = 0;
  uint64_t pending_io_rax_ = 0;
  MmioInstruction pending_mmio_;
  uint64_t pending_rip_ = 0;  // RIP after the instruction
  std::array<uint8_t, 4> io_data_{};  // IoExit::data of the last port access
};

}  // namespace virt::whp
