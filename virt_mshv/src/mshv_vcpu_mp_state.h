// MshvVcpuMpState: MpState over HV_REGISTER_INTERNAL_ACTIVITY_STATE.
#pragma once

#include <cstdint>
#include <memory>

#include "virt/mp_state.h"
#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

// The Microsoft hypervisor keeps a VP's wait state in HV_REGISTER_INTERNAL_ACTIVITY_STATE
// (read and written with HVCALL_GET/SET_VP_REGISTERS):
//   StartupSuspend (bit 0)  <-> kUninitialized: an AP waiting for the BSP's INIT/SIPI, which
//                               the hypervisor's LAPIC performs itself;
//   HaltSuspend (bit 1)     <-> kHalted;
//   neither                 <-> kRunnable (IdleSuspend, bit 2, is derived state the hypervisor
//                               sets and clears itself; it is ignored when read).
// MSHV has a single wait-for-startup state: it cannot tell an AP that took INIT from one that did
// not (a SIPI starts either), and has no SIPI-received step, so kInitReceived and kSipiReceived
// are kUnavailable. Lives inside MshvVcpu and shares its thread rules.
class MshvVcpuMpState final : public VcpuMpState {
 public:
  MshvVcpuMpState(std::shared_ptr<MshvIoctl> ioctl, int vp_fd, uint32_t vp_index);

  // HVCALL_GET_VP_REGISTERS {HV_REGISTER_INTERNAL_ACTIVITY_STATE}. Reserved bits (3-63) or
  // StartupSuspend with HaltSuspend give kUnavailable naming the raw value.
  Result<MpState> GetMpState() override;

  // HVCALL_SET_VP_REGISTERS {HV_REGISTER_INTERNAL_ACTIVITY_STATE = 1 (kUninitialized), 2
  // (kHalted) or 0 (kRunnable)}. kRunnable on a waiting AP starts it at its current registers.
  // kInitReceived / kSipiReceived: kUnavailable before any hypercall.
  Status SetMpState(MpState state) override;

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  int vp_fd_;
  uint32_t vp_index_;
};

}  // namespace virt::mshv
