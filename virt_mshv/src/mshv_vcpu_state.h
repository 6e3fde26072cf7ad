// MshvVcpuState: a vCPU's whole state on MSHV, part by part (Vcpu::state()).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "virt/mshv/mshv_ioctl.h"
#include "virt/vcpu.h"
#include "virt/vcpu_state_control.h"

namespace virt::mshv {

// Every VcpuStatePart (kLapic only in a partition with the LAPIC, PartitionConfig::irqchip), each
// through one MSHV call:
//   kCpuid             the vCPU's VcpuCpuid (a restore of the table it already has is a no-op,
//                      so a vCPU that has run accepts its own state back);
//   kMsrs              kSaveableMsrs (mshv_msr_names.h) in one HVCALL_GET/SET_VP_REGISTERS;
//   kSpecialRegisters, kRegisters  the vCPU's register hypercalls;
//   kXcrs              XCR0 as HV_X64_REGISTER_XFEM (the only XCR MSHV has);
//   kXsave             MSHV_GET/SET_VP_STATE(XSAVE), the compacted area of the size the kernel
//                      reports (at most MshvVcpu::kXsaveBufferSize);
//   kDebugRegisters    DR0-DR3, DR6, DR7 in one register hypercall;
//   kMpState           the vCPU's VcpuMpState (HV_REGISTER_INTERNAL_ACTIVITY_STATE);
//   kLapic             MSHV_GET/SET_VP_STATE(LAPIC), one 4 KiB page;
//   kEvents            HV_REGISTER_PENDING_INTERRUPTION, _INTERRUPT_STATE, _PENDING_EVENT0
//                      (mshv_vcpu_events.h says what has no MSHV form);
//   kTsc               HV_X64_REGISTER_TSC, last.
// Lives inside MshvVcpu and shares its thread rules (the vCPU's thread, not in Run).
class MshvVcpuState final : public PartwiseVcpuState {
 public:
  // `vcpu` owns this object and the vp fd; `lapic`: the partition has the LAPIC.
  MshvVcpuState(std::shared_ptr<MshvIoctl> ioctl, int vp_fd, uint32_t vp_index, Vcpu& vcpu,
                bool lapic);

  std::span<const VcpuStatePart> supported_parts() const override;

 protected:
  std::string_view backend_name() const override { return "mshv"; }
  Status SavePart(VcpuStatePart part, VcpuState& into) override;
  Status LoadPart(VcpuStatePart part, const VcpuState& from) override;

 private:
  Status GetRegs(std::span<const uint32_t> names, std::span<hv_register_value> values);
  Status SetRegs(std::span<const hv_register_assoc> assocs);
  // MSHV_GET_VP_STATE / MSHV_SET_VP_STATE of `type` through a page-aligned buffer of `buffer`
  // bytes.
  Result<std::vector<uint8_t>> GetVpState(uint8_t type, size_t buffer);
  Status SetVpState(uint8_t type, size_t buffer, const std::vector<uint8_t>& bytes);
  Status SaveEvents(VcpuState& into);
  Status LoadEvents(const VcpuEvents& events);

  std::shared_ptr<MshvIoctl> ioctl_;
  int vp_fd_;
  uint32_t vp_index_;
  Vcpu& vcpu_;
  bool lapic_;
};

}  // namespace virt::mshv
