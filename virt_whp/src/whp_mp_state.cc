// WhpVcpuMpState: MpState <-> WHV_INTERNAL_ACTIVITY_REGISTER, read and written as a VP register.
#include "whp_mp_state.h"

#include <cstdio>
#include <string>

namespace virt::whp {

std::optional<uint64_t> ActivityFor(MpState state) {
  WHV_INTERNAL_ACTIVITY_REGISTER r{};
  switch (state) {
    case MpState::kRunnable: return r.AsUINT64;
    case MpState::kUninitialized: r.StartupSuspend = 1; return r.AsUINT64;
    case MpState::kHalted: r.HaltSuspend = 1; return r.AsUINT64;
    case MpState::kInitReceived:
    case MpState::kSipiReceived: return std::nullopt;
  }
  return std::nullopt;
}

std::optional<MpState> MpStateFor(uint64_t activity) {
  WHV_INTERNAL_ACTIVITY_REGISTER r{};
  r.AsUINT64 = activity;
  if (r.IdleSuspend || r.Reserved) return std::nullopt;
  if (r.StartupSuspend) return MpState::kUninitialized;
  if (r.HaltSuspend) return MpState::kHalted;
  return MpState::kRunnable;
}

Result<MpState> WhpVcpuMpState::GetMpState() {
  const WHV_REGISTER_NAME name = WHvRegisterInternalActivityState;
  WHV_REGISTER_VALUE value{};
  if (Status s = partition_.api().GetVirtualProcessorRegisters(partition_.get(), index_, &name,
                                                                1, &value);
      !s) {
    return s.error();
  }
  const uint64_t raw = value.InternalActivity.AsUINT64;
  if (auto state = MpStateFor(raw)) return *state;
  char hex[24];
  std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(raw));
  return Error::Make(ErrorCode::kUnavailable, "WhpVcpu::GetMpState",
                     std::string("internal activity state ") + hex +
                         " (IdleSuspend or reserved bits) has no MpState");
}

Status WhpVcpuMpState::SetMpState(MpState state) {
  const auto activity = ActivityFor(state);
  if (!activity) {
    return Error::Make(ErrorCode::kUnavailable, "WhpVcpu::SetMpState",
                       std::string("WHP cannot represent MpState ") + ToString(state) +
                           ": its LAPIC has one wait-for-SIPI state (StartupSuspend, read back "
                           "as uninitialized) and applies a SIPI at once");
  }
  const WHV_REGISTER_NAME name = WHvRegisterInternalActivityState;
  WHV_REGISTER_VALUE value{};
  value.InternalActivity.AsUINT64 = *activity;
  return partition_.api().SetVirtualProcessorRegisters(partition_.get(), index_, &name, 1,
                                                       &value);
}

}  // namespace virt::whp
