// VcpuEvents <-> the WHP registers holding a VP's events being delivered or pending.
#pragma once

#include <array>

#include "virt/result.h"
#include "virt/vcpu_state.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

// The registers a VP's events live in, read and written in one
// WHvGet/SetVirtualProcessorRegisters.
inline constexpr std::array<WHV_REGISTER_NAME, 3> kEventRegisterNames = {
    WHvRegisterPendingInterruption, WHvRegisterInterruptState, WHvRegisterPendingEvent};

// In kEventRegisterNames order.
struct WhpEventRegisters {
  WHV_REGISTER_VALUE pending_interruption{};  // the event being delivered (injected)
  WHV_REGISTER_VALUE interrupt_state{};       // interrupt shadow, NMI masked
  WHV_REGISTER_VALUE pending_event{};         // an exception raised, not yet delivered
};

// The registers as VcpuEvents: an injected external interrupt, NMI or hardware exception; a
// pending exception (its ExceptionParameter the payload for #DB, #PF or when not zero); the
// interrupt shadow (1) and NMI masking. kUnavailable, naming the raw value, for what VcpuEvents
// cannot carry: a software interrupt or exception being delivered, a nested event, a pending
// event other than an exception (WHvX64PendingEventExtInt), or an exception both being
// delivered and pending.
Result<VcpuEvents> EventsFromWhp(const WhpEventRegisters& whp);

// VcpuEvents as the registers. Refused before any call: kInvalidArgument for more than one
// injected event, or an exception both injected and pending; kUnavailable for what WHP has no
// register for: a soft (INTn) interrupt, an NMI pending but not injected, any SMM field, a SIPI
// vector, a pending triple fault, a payload of an exception that is not pending. Any interrupt
// shadow (STI or MOV SS) becomes WHP's single InterruptShadow bit.
Result<WhpEventRegisters> EventsToWhp(const VcpuEvents& events);

}  // namespace virt::whp
