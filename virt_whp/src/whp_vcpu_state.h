// WhpVcpuState: a vCPU's whole state on WHP, part by part (Vcpu::state()).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "virt/vcpu.h"
#include "virt/vcpu_state_control.h"
#include "whp_partition.h"

namespace virt::whp {

// The VcpuStateParts WHP has, each through one WHv call:
//   kCpuid             the vCPU's VcpuCpuid (only where the host has
//                      WHvGetVirtualProcessorCpuidOutput; a restore of the table the vCPU
//                      already has is a no-op, so a vCPU that has run accepts its own state);
//   kMsrs              kWhpSaveableMsrs (whp_msr_names.h) in one
//                      WHvGet/SetVirtualProcessorRegisters;
//   kSpecialRegisters, kRegisters  the vCPU's register batches;
//   kXcrs              XCR0 as WHvX64RegisterXCr0 (the only XCR WHP has);
//   kXsave             WHvGet/SetVirtualProcessorXsaveState: the hypervisor's area, of the size
//                      it writes into a kXsaveBufferSize buffer;
//   kDebugRegisters    Dr0-Dr3, Dr6, Dr7 in one register call;
//   kMpState           the vCPU's VcpuMpState (WHvRegisterInternalActivityState; irqchip only);
//   kLapic             WHvGet/SetVirtualProcessorInterruptControllerState2, the emulated LAPIC's
//                      4 KiB register page (irqchip only: WHP's LAPIC emulation);
//   kEvents            WHvRegisterPendingInterruption, InterruptState, PendingEvent
//                      (whp_vcpu_events.h says what has no WHP form);
//   kTsc               WHvX64RegisterTsc, last.
// Where WinHvPlatform.dll lacks the XSAVE or interrupt-controller functions (before Windows 10
// 1809 / 1903) those parts fail with kUnavailable naming the function. Lives inside WhpVcpu and
// shares its thread rules (the vCPU's thread, not in Run).
class WhpVcpuState final : public PartwiseVcpuState {
 public:
  static constexpr uint32_t kXsaveBufferSize = 16 * 1024;  // AMX's 11 KiB area fits
  static constexpr uint32_t kLapicStateSize = 4096;

  // `vcpu` owns this object; `cpuid`: the vCPU has a VcpuCpuid; `irqchip`: the partition emulates
  // the LAPIC (MP state and LAPIC parts).
  WhpVcpuState(WhpPartitionHandle& partition, uint32_t index, Vcpu& vcpu, bool cpuid,
               bool irqchip);

  std::span<const VcpuStatePart> supported_parts() const override { return parts_; }

 protected:
  std::string_view backend_name() const override { return "whp"; }
  Status SavePart(VcpuStatePart part, VcpuState& into) override;
  Status LoadPart(VcpuStatePart part, const VcpuState& from) override;

 private:
  Status GetRegs(std::span<const WHV_REGISTER_NAME> names, std::span<WHV_REGISTER_VALUE> values);
  Status SetRegs(std::span<const WHV_REGISTER_NAME> names,
                 std::span<const WHV_REGISTER_VALUE> values);
  Status SaveEvents(VcpuState& into);
  Status LoadEvents(const VcpuEvents& events);

  WhpPartitionHandle& partition_;
  uint32_t index_;
  Vcpu& vcpu_;
  std::vector<VcpuStatePart> parts_;
};

}  // namespace virt::whp
