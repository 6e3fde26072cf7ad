// VcpuEvents <-> the Hyper-V registers holding a VP's events being delivered or pending.
#pragma once

#include <array>
#include <cstdint>

#include "virt/mshv/hv_abi.h"
#include "virt/result.h"
#include "virt/vcpu_state.h"

namespace virt::mshv {

// The registers a VP's events live in, read and written in one HVCALL_GET/SET_VP_REGISTERS.
inline constexpr std::array<uint32_t, 3> kEventRegisterNames = {
    HV_REGISTER_PENDING_INTERRUPTION, HV_REGISTER_INTERRUPT_STATE, HV_REGISTER_PENDING_EVENT0};

// In kEventRegisterNames order.
struct HvEventRegisters {
  hv_register_value pending_interruption{};  // the event being delivered (injected)
  hv_register_value interrupt_state{};       // interrupt shadow, NMI masked
  hv_register_value pending_event{};         // an exception raised, not yet delivered
};

// The hypervisor's registers as VcpuEvents: an injected external interrupt, NMI or hardware
// exception; a pending exception (its parameter the payload for #DB, #PF or when not zero); the
// interrupt shadow (1) and NMI masking. kUnavailable, naming the raw value, for what VcpuEvents
// cannot carry: a software interrupt or exception being delivered, a nested event, a pending
// event other than an exception, or an exception both being delivered and pending.
Result<VcpuEvents> EventsFromHv(const HvEventRegisters& hv);

// VcpuEvents as the hypervisor's registers. Refused before any call: kInvalidArgument for more
// than one injected event, or an exception both injected and pending; kUnavailable for what MSHV
// has no register for: a soft (INTn) interrupt, an NMI pending but not injected, any SMM field, a
// SIPI vector, a pending triple fault, a payload of an exception that is not pending. Any
// interrupt shadow (STI or MOV SS) becomes the hypervisor's single shadow bit.
Result<HvEventRegisters> EventsToHv(const VcpuEvents& events);

}  // namespace virt::mshv
