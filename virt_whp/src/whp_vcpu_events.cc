// VcpuEvents to and from WHvRegisterPendingInterruption, InterruptState and PendingEvent.
#include "whp_vcpu_events.h"

#include <cstdio>
#include <string>

namespace virt::whp {
namespace {

constexpr const char* kSaveOp = "WhpVcpuState::SaveState";
constexpr const char* kLoadOp = "WhpVcpuState::RestoreState";
constexpr uint8_t kDebugVector = 1;
constexpr uint8_t kPageFaultVector = 14;
constexpr uint8_t kNmiVector = 2;

Error Unavailable(const char* op, const std::string& what) {
  return Error::Make(ErrorCode::kUnavailable, op, what);
}

std::string Hex(const char* name, uint64_t value) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s 0x%llx", name, static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace

Result<VcpuEvents> EventsFromWhp(const WhpEventRegisters& whp) {
  VcpuEvents e;
  const WHV_X64_PENDING_INTERRUPTION_REGISTER& pi = whp.pending_interruption.PendingInterruption;
  if (pi.InterruptionPending) {
    if (pi.NestedEvent) {
      return Unavailable(kSaveOp,
                         Hex("a nested event in WHvRegisterPendingInterruption", pi.AsUINT64));
    }
    const auto vector = static_cast<uint8_t>(pi.InterruptionVector);
    switch (pi.InterruptionType) {
      case WHvX64PendingInterrupt:
        e.interrupt.injected = true;
        e.interrupt.vector = vector;
        break;
      case WHvX64PendingNmi:
        e.nmi.injected = true;
        break;
      case WHvX64PendingException:
        e.exception.injected = true;
        e.exception.vector = vector;
        e.exception.has_error_code = pi.DeliverErrorCode != 0;
        e.exception.error_code = pi.ErrorCode;
        break;
      default:
        return Unavailable(
            kSaveOp, Hex("WHvRegisterPendingInterruption (a software event)", pi.AsUINT64));
    }
  }
  const WHV_X64_INTERRUPT_STATE_REGISTER& is = whp.interrupt_state.InterruptState;
  e.interrupt.shadow = is.InterruptShadow ? 1 : 0;
  e.nmi.masked = is.NmiMasked != 0;

  const WHV_X64_PENDING_EXCEPTION_EVENT& pe = whp.pending_event.ExceptionEvent;
  if (pe.EventPending) {
    if (pe.EventType != WHvX64PendingEventException) {
      return Unavailable(kSaveOp, Hex("WHvRegisterPendingEvent of a non-exception type",
                                      whp.pending_event.Reg128.Low64));
    }
    if (e.exception.injected) {
      return Unavailable(kSaveOp, "an exception is being delivered while another is pending");
    }
    e.exception.pending = true;
    e.exception.vector = static_cast<uint8_t>(pe.Vector);
    e.exception.has_error_code = pe.DeliverErrorCode != 0;
    e.exception.error_code = pe.ErrorCode;
    if (e.exception.vector == kDebugVector || e.exception.vector == kPageFaultVector ||
        pe.ExceptionParameter != 0) {
      e.exception.payload = pe.ExceptionParameter;
    }
  }
  return e;
}

Result<WhpEventRegisters> EventsToWhp(const VcpuEvents& e) {
  const int injected = int{e.exception.injected} + int{e.interrupt.injected} + int{e.nmi.injected};
  if (injected > 1) {
    return Error::Make(ErrorCode::kInvalidArgument, kLoadOp,
                       "more than one event is being delivered (exception, interrupt, NMI)");
  }
  if (e.exception.injected && e.exception.pending) {
    return Error::Make(ErrorCode::kInvalidArgument, kLoadOp,
                       "the exception is both being delivered and pending");
  }
  if (e.interrupt.injected && e.interrupt.soft) {
    return Unavailable(kLoadOp, "WHP has no form for a software interrupt (INTn) being delivered");
  }
  if (e.nmi.pending) {
    return Unavailable(kLoadOp, "WHP has no register for an NMI pending but not delivered");
  }
  if (e.smi.smm || e.smi.pending || e.smi.inside_nmi || e.smi.latched_init) {
    return Unavailable(kLoadOp, "WHP guests have no SMM state");
  }
  if (e.sipi_vector != 0) {
    return Unavailable(kLoadOp, "WHP has no SIPI vector (its LAPIC takes SIPIs itself)");
  }
  if (e.triple_fault_pending) return Unavailable(kLoadOp, "WHP has no pending triple fault");
  if (e.exception.payload && !e.exception.pending) {
    return Unavailable(kLoadOp, "WHP carries an exception parameter only for a pending exception");
  }
  WhpEventRegisters whp;
  WHV_X64_PENDING_INTERRUPTION_REGISTER& pi = whp.pending_interruption.PendingInterruption;
  if (e.interrupt.injected) {
    pi.InterruptionPending = 1;
    pi.InterruptionType = WHvX64PendingInterrupt;
    pi.InterruptionVector = e.interrupt.vector;
  } else if (e.nmi.injected) {
    pi.InterruptionPending = 1;
    pi.InterruptionType = WHvX64PendingNmi;
    pi.InterruptionVector = kNmiVector;
  } else if (e.exception.injected) {
    pi.InterruptionPending = 1;
    pi.InterruptionType = WHvX64PendingException;
    pi.DeliverErrorCode = e.exception.has_error_code ? 1 : 0;
    pi.InterruptionVector = e.exception.vector;
    pi.ErrorCode = e.exception.error_code;
  }
  WHV_X64_INTERRUPT_STATE_REGISTER& is = whp.interrupt_state.InterruptState;
  is.InterruptShadow = e.interrupt.shadow != 0 ? 1 : 0;
  is.NmiMasked = e.nmi.masked ? 1 : 0;
  if (e.exception.pending) {
    WHV_X64_PENDING_EXCEPTION_EVENT& pe = whp.pending_event.ExceptionEvent;
    pe.EventPending = 1;
    pe.EventType = WHvX64PendingEventException;
    pe.DeliverErrorCode = e.exception.has_error_code ? 1 : 0;
    pe.Vector = e.exception.vector;
    pe.ErrorCode = e.exception.error_code;
    pe.ExceptionParameter = e.exception.payload.value_or(0);
  }
  return whp;
}

}  // namespace virt::whp
