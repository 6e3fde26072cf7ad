// MshvVcpuMpState: mapping MpState to and from the internal activity state register.
#include "mshv_vcpu_mp_state.h"

#include <cstdio>
#include <string>
#include <utility>

#include "mshv_hvcall.h"

namespace virt::mshv {
namespace {

constexpr uint64_t kKnownBits = HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND |
                                HV_INTERNAL_ACTIVITY_HALT_SUSPEND |
                                HV_INTERNAL_ACTIVITY_IDLE_SUSPEND;

Error Unrepresentable(const char* op, const std::string& what) {
  return Error::Make(ErrorCode::kUnavailable, op, what);
}

}  // namespace

MshvVcpuMpState::MshvVcpuMpState(std::shared_ptr<MshvIoctl> ioctl, int vp_fd, uint32_t vp_index)
    : ioctl_(std::move(ioctl)), vp_fd_(vp_fd), vp_index_(vp_index) {}

Result<MpState> MshvVcpuMpState::GetMpState() {
  const uint32_t name = HV_REGISTER_INTERNAL_ACTIVITY_STATE;
  hv_register_value value{};
  if (Status s = GetVpRegisters(*ioctl_, vp_fd_, vp_index_, {&name, 1}, {&value, 1}); !s) {
    return s.error();
  }
  const uint64_t raw = value.low;
  const bool startup = (raw & HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND) != 0;
  const bool halt = (raw & HV_INTERNAL_ACTIVITY_HALT_SUSPEND) != 0;
  if ((raw & ~kKnownBits) != 0 || value.high != 0 || (startup && halt)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "HV_REGISTER_INTERNAL_ACTIVITY_STATE 0x%llx is no MpState",
                  static_cast<unsigned long long>(raw));
    return Unrepresentable("MshvVcpuMpState::GetMpState", buf);
  }
  if (startup) return MpState::kUninitialized;
  if (halt) return MpState::kHalted;
  return MpState::kRunnable;
}

Status MshvVcpuMpState::SetMpState(MpState state) {
  uint64_t raw = 0;
  switch (state) {
    case MpState::kRunnable: raw = 0; break;
    case MpState::kUninitialized: raw = HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND; break;
    case MpState::kHalted: raw = HV_INTERNAL_ACTIVITY_HALT_SUSPEND; break;
    case MpState::kInitReceived:
    case MpState::kSipiReceived:
      return Unrepresentable("MshvVcpuMpState::SetMpState",
                             std::string("MSHV has no ") + ToString(state) +
                                 " state: HV_REGISTER_INTERNAL_ACTIVITY_STATE only has "
                                 "StartupSuspend (kUninitialized) and HaltSuspend (kHalted)");
  }
  const hv_register_assoc assoc = Assoc(HV_REGISTER_INTERNAL_ACTIVITY_STATE, raw);
  return SetVpRegisters(*ioctl_, vp_fd_, vp_index_, {&assoc, 1});
}

}  // namespace virt::mshv
