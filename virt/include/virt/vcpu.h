// Vcpu: one virtual processor: run to the next exit, complete reads, registers, cancel.
#pragma once

#include <cstdint>
#include <span>

#include "virt/mp_state.h"
#include "virt/registers.h"
#include "virt/result.h"
#include "virt/vcpu_cpuid.h"
#include "virt/vcpu_exit.h"
#include "virt/vcpu_state_control.h"

namespace virt {

// A virtual processor. Run/Complete*/register calls come from the one thread that drives the
// vCPU; Cancel may come from any thread. A Vcpu may outlive its Partition object (the kernel
// keeps the VM alive while a vCPU fd is open), but is useless without it.
class Vcpu {
 public:
  virtual ~Vcpu() = default;

  virtual uint32_t index() const = 0;

  // Enters the guest until the next exit the VMM must handle and decodes it (KVM_RUN /
  // MSHV_RUN_VP / WHvRunVirtualProcessor). On an application processor that waits for INIT/SIPI
  // (MpState::kUninitialized) it blocks in the hypervisor until the boot processor starts it,
  // then runs the guest from the SIPI vector; it returns no exit for the wait itself (transient
  // EINTR/EAGAIN are retried). A Cancel before or during the call makes it return
  // CancelledExit once; the cancel is consumed by that return. Data referenced by an IoExit is
  // valid until the next Run.
  virtual Result<VcpuExit> Run() = 0;

  // Answers the pending IN of the last IoExit with size * count bytes. kFailedPrecondition when
  // no IN is pending, kInvalidArgument when the length is wrong.
  virtual Status CompleteIoIn(std::span<const uint8_t> data) = 0;

  // Answers the pending MMIO read of the last MmioExit (the low `size` bytes of value are used).
  virtual Status CompleteMmioRead(uint64_t value) = 0;

  // Makes the running (or next) Run return CancelledExit. Thread-safe, async-signal-unsafe.
  virtual void Cancel() = 0;

  // General-purpose registers in one call (KVM_GET_REGS / KVM_SET_REGS ...).
  virtual Result<Registers> GetRegisters() = 0;
  virtual Status SetRegisters(const Registers& regs) = 0;

  // Segment, control and table registers in one call (KVM_GET_SREGS / KVM_SET_SREGS ...).
  virtual Result<SpecialRegisters> GetSpecialRegisters() = 0;
  virtual Status SetSpecialRegisters(const SpecialRegisters& sregs) = 0;

  // x87/SSE state in one call (KVM_GET_FPU / KVM_SET_FPU ...).
  virtual Result<FpuState> GetFpu() = 0;
  virtual Status SetFpu(const FpuState& fpu) = 0;

  // Reads the value of every entry's MSR in one call (KVM_GET_MSRS); fails naming the first
  // MSR the hypervisor refused.
  virtual Status GetMsrs(std::span<MsrEntry> msrs) = 0;
  // Writes every entry in one call (KVM_SET_MSRS); fails naming the first refused MSR.
  virtual Status SetMsrs(std::span<const MsrEntry> msrs) = 0;

  // Optional capabilities; nullptr where the backend has none.
  // Per-vCPU CPUID (see VcpuCpuid).
  virtual VcpuCpuid* cpuid() { return nullptr; }
  // The INIT/SIPI multiprocessor state (see VcpuMpState).
  virtual VcpuMpState* mp_state() { return nullptr; }
  // Save / restore of the whole vCPU, or part by part (see VcpuStateControl).
  virtual VcpuStateControl* state() { return nullptr; }
};

}  // namespace virt
