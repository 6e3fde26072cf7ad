// VcpuEvents to and from HV_REGISTER_PENDING_INTERRUPTION, _INTERRUPT_STATE and _PENDING_EVENT0.
#include "mshv_vcpu_events.h"

#include <cstdio>
#include <string>

namespace virt::mshv {
namespace {

constexpr const char* kSaveOp = "MshvVcpuState::SaveState";
constexpr const char* kLoadOp = "MshvVcpuState::RestoreState";
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

Result<VcpuEvents> EventsFromHv(const HvEventRegisters& hv) {
  VcpuEvents e;
  const uint64_t pi = hv.pending_interruption.low;
  if ((pi & HV_X64_PENDING_INTERRUPTION_PENDING) != 0) {
    const auto type = static_cast<uint32_t>((pi >> kHvPendingInterruptionTypeShift) & 7);
    const auto vector = static_cast<uint8_t>(pi >> kHvPendingInterruptionVectorShift);
    if ((pi & HV_X64_PENDING_INTERRUPTION_NESTED_EVENT) != 0) {
      return Unavailable(kSaveOp, Hex("a nested event in HV_REGISTER_PENDING_INTERRUPTION", pi));
    }
    switch (type) {
      case HV_X64_PENDING_INTERRUPT:
        e.interrupt.injected = true;
        e.interrupt.vector = vector;
        break;
      case HV_X64_PENDING_NMI:
        e.nmi.injected = true;
        break;
      case HV_X64_PENDING_EXCEPTION:
        e.exception.injected = true;
        e.exception.vector = vector;
        e.exception.has_error_code = (pi & HV_X64_PENDING_INTERRUPTION_DELIVER_ERROR_CODE) != 0;
        e.exception.error_code = static_cast<uint32_t>(pi >> kHvPendingInterruptionErrorCodeShift);
        break;
      default:
        return Unavailable(kSaveOp, Hex("HV_REGISTER_PENDING_INTERRUPTION (a software event)", pi));
    }
  }
  const uint64_t is = hv.interrupt_state.low;
  e.interrupt.shadow = (is & HV_X64_INTERRUPT_STATE_INTERRUPT_SHADOW) != 0 ? 1 : 0;
  e.nmi.masked = (is & HV_X64_INTERRUPT_STATE_NMI_MASKED) != 0;

  const uint64_t pe = hv.pending_event.low;
  if ((pe & HV_X64_PENDING_EVENT_PENDING) != 0) {
    const auto type = static_cast<uint32_t>((pe >> kHvPendingEventTypeShift) & 7);
    if (type != HV_X64_PENDING_EVENT_EXCEPTION) {
      return Unavailable(kSaveOp, Hex("HV_REGISTER_PENDING_EVENT0 of a non-exception type", pe));
    }
    if (e.exception.injected) {
      return Unavailable(kSaveOp, "an exception is being delivered while another is pending");
    }
    e.exception.pending = true;
    e.exception.vector = static_cast<uint8_t>(pe >> kHvPendingEventVectorShift);
    e.exception.has_error_code = (pe & HV_X64_PENDING_EVENT_DELIVER_ERROR_CODE) != 0;
    e.exception.error_code = static_cast<uint32_t>(pe >> kHvPendingEventErrorCodeShift);
    const uint64_t parameter = hv.pending_event.high;
    if (e.exception.vector == kDebugVector || e.exception.vector == kPageFaultVector ||
        parameter != 0) {
      e.exception.payload = parameter;
    }
  }
  return e;
}

Result<HvEventRegisters> EventsToHv(const VcpuEvents& e) {
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
    return Unavailable(kLoadOp, "MSHV has no form for a software interrupt (INTn) being delivered");
  }
  if (e.nmi.pending) {
    return Unavailable(kLoadOp, "MSHV has no register for an NMI pending but not delivered");
  }
  if (e.smi.smm || e.smi.pending || e.smi.inside_nmi || e.smi.latched_init) {
    return Unavailable(kLoadOp, "MSHV guests have no SMM state");
  }
  if (e.sipi_vector != 0) {
    return Unavailable(kLoadOp, "MSHV has no SIPI vector (its LAPIC takes SIPIs itself)");
  }
  if (e.triple_fault_pending) return Unavailable(kLoadOp, "MSHV has no pending triple fault");
  if (e.exception.payload && !e.exception.pending) {
    return Unavailable(kLoadOp, "MSHV carries an exception parameter only for a pending exception");
  }
  HvEventRegisters hv;
  uint64_t pi = 0;
  if (e.interrupt.injected) {
    pi = HV_X64_PENDING_INTERRUPTION_PENDING |
         uint64_t{HV_X64_PENDING_INTERRUPT} << kHvPendingInterruptionTypeShift |
         uint64_t{e.interrupt.vector} << kHvPendingInterruptionVectorShift;
  } else if (e.nmi.injected) {
    pi = HV_X64_PENDING_INTERRUPTION_PENDING |
         uint64_t{HV_X64_PENDING_NMI} << kHvPendingInterruptionTypeShift |
         uint64_t{kNmiVector} << kHvPendingInterruptionVectorShift;
  } else if (e.exception.injected) {
    pi = HV_X64_PENDING_INTERRUPTION_PENDING |
         uint64_t{HV_X64_PENDING_EXCEPTION} << kHvPendingInterruptionTypeShift |
         (e.exception.has_error_code ? HV_X64_PENDING_INTERRUPTION_DELIVER_ERROR_CODE : 0) |
         uint64_t{e.exception.vector} << kHvPendingInterruptionVectorShift |
         uint64_t{e.exception.error_code} << kHvPendingInterruptionErrorCodeShift;
  }
  hv.pending_interruption.low = pi;
  hv.interrupt_state.low = (e.interrupt.shadow != 0 ? HV_X64_INTERRUPT_STATE_INTERRUPT_SHADOW : 0) |
                           (e.nmi.masked ? HV_X64_INTERRUPT_STATE_NMI_MASKED : 0);
  if (e.exception.pending) {
    const uint64_t deliver =
        e.exception.has_error_code ? HV_X64_PENDING_EVENT_DELIVER_ERROR_CODE : 0;
    hv.pending_event.low = HV_X64_PENDING_EVENT_PENDING |
                           uint64_t{HV_X64_PENDING_EVENT_EXCEPTION} << kHvPendingEventTypeShift |
                           deliver | uint64_t{e.exception.vector} << kHvPendingEventVectorShift |
                           uint64_t{e.exception.error_code} << kHvPendingEventErrorCodeShift;
    hv.pending_event.high = e.exception.payload.value_or(0);
  }
  return hv;
}

}  // namespace virt::mshv
