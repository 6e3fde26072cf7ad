// WhpDoorbellOps: doorbells as WHP partition doorbell events.
#include "whp_doorbells.h"

#include <cstdint>

namespace virt::whp {

WHV_DOORBELL_MATCH_DATA WhpDoorbellOps::ToWhp(const DoorbellMatch& match) {
  WHV_DOORBELL_MATCH_DATA d{};
  d.GuestAddress = match.address;
  if (match.length != kDoorbellAnyLength) {
    d.Length = match.length;
    d.MatchOnLength = 1;
  }
  if (match.data) {
    d.Value = *match.data;
    d.MatchOnValue = 1;
  }
  return d;
}

HANDLE WhpDoorbellOps::HandleOf(const Event& event) {
#ifdef _WIN32
  return event.native_handle();
#else
  return reinterpret_cast<HANDLE>(static_cast<intptr_t>(event.native_handle()));
#endif
}

Status WhpDoorbellOps::Register(const DoorbellMatch& match, const Event& event) {
  if (match.space == DoorbellSpace::kPio) {
    return Error::Make(ErrorCode::kUnavailable, "Doorbells::Register",
                       Describe(match) +
                           ": WHP doorbells match guest physical addresses only (no port I/O "
                           "form in WHV_DOORBELL_MATCH_DATA); use UserModeDoorbells for ports");
  }
  Status s = api_->RegisterPartitionDoorbellEvent(partition_, ToWhp(match), HandleOf(event));
  if (!s && s.error().domain == NativeDomain::kHresult &&
      s.error().native_code == static_cast<int64_t>(static_cast<uint32_t>(kHrHvInvalidParameter))) {
    Error e = s.error();
    e.code = ErrorCode::kOverlap;
    e.detail = Describe(match) +
               ": WHP refuses it next to a doorbell of another length at this address "
               "(ERROR_HV_INVALID_PARAMETER)";
    return e;
  }
  return s;
}

Status WhpDoorbellOps::Unregister(const DoorbellMatch& match, const Event&) {
  return api_->UnregisterPartitionDoorbellEvent(partition_, ToWhp(match));
}

}  // namespace virt::whp
