// MpState and VcpuMpState: a vCPU's multiprocessor state and its optional control (Vcpu::mp_state()).
#pragma once

#include <cstdint>

#include "virt/result.h"

namespace virt {

// Where a vCPU stands in the x86 INIT/SIPI protocol, as the in-kernel LAPIC keeps it (the
// KVM_MP_STATE_* values, x86 subset).
enum class MpState : uint8_t {
  kRunnable,       // executing (vCPU 0 from creation; an AP after its SIPI)
  kUninitialized,  // an AP waiting for INIT (every vCPU but 0 when created with an irqchip)
  kInitReceived,   // INIT taken, waiting for SIPI
  kHalted,         // in HLT, waiting for an interrupt
  kSipiReceived,   // SIPI taken, about to start at the SIPI vector
};

const char* ToString(MpState state);

// Reads and sets the multiprocessor state. With an in-kernel LAPIC, APs need nothing from the
// VMM: their Run blocks in the kernel until the boot processor's INIT/SIPI starts them. A VMM
// uses this to observe bring-up, to save and restore it, or to start or park a vCPU itself.
// Called from the vCPU's own thread while it is not in Run.
class VcpuMpState {
 public:
  virtual ~VcpuMpState() = default;

  // KVM_GET_MP_STATE ... A state outside MpState gives kUnavailable naming its raw value.
  virtual Result<MpState> GetMpState() = 0;
  // KVM_SET_MP_STATE ... A state the hypervisor cannot represent gives kUnavailable naming it;
  // nothing changes on error.
  virtual Status SetMpState(MpState state) = 0;
};

}  // namespace virt
