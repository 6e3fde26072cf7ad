// PartwiseVcpuState: the one place where a vCPU restore's order, refusals and rollback live.
#include <algorithm>
#include <optional>
#include <string>

#include "virt/vcpu_state_control.h"

namespace virt {

bool PartwiseVcpuState::Supports(VcpuStatePart part) const {
  const auto parts = supported_parts();
  return std::find(parts.begin(), parts.end(), part) != parts.end();
}

Result<VcpuState> PartwiseVcpuState::SaveState(std::span<const VcpuStatePart> parts) {
  VcpuState state;
  state.backend = std::string(backend_name());
  if (parts.empty()) parts = supported_parts();
  for (VcpuStatePart p : kVcpuRestoreOrder) {  // in order, whatever order `parts` has
    if (std::find(parts.begin(), parts.end(), p) == parts.end()) continue;
    if (!Supports(p)) {
      return Error::Make(ErrorCode::kUnavailable, "VcpuStateControl::SaveState",
                         std::string(backend_name()) + " cannot save part " + ToString(p));
    }
    if (Status s = SavePart(p, state); !s) {
      Error e = s.error();
      e.detail = std::string("saving ") + ToString(p) + (e.detail.empty() ? "" : ": ") + e.detail;
      return e;
    }
  }
  return state;
}

Status PartwiseVcpuState::RestoreState(const VcpuState& state, RestoreMode mode) {
  constexpr const char* kOp = "VcpuStateControl::RestoreState";
  if (state.backend != backend_name()) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the state was saved by backend " + state.backend + ", this is " +
                           std::string(backend_name()));
  }
  const std::vector<VcpuStatePart> parts = state.parts();
  for (VcpuStatePart p : parts) {
    if (!Supports(p)) {
      return Error::Make(ErrorCode::kUnavailable, kOp,
                         std::string(backend_name()) + " cannot restore part " + ToString(p) +
                             "; nothing was changed");
    }
  }
  // What to put back if a part fails half way.
  std::optional<VcpuState> before;
  if (mode == RestoreMode::kRollBackOnFailure) {
    auto saved = SaveState(parts);
    if (!saved) return saved.error();
    before = std::move(*saved);
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    Status loaded = LoadPart(parts[i], state);
    if (loaded) continue;
    if (!before) {
      Error e = loaded.error();
      e.detail = std::string("restoring ") + ToString(parts[i]) + " failed" +
                 (e.detail.empty() ? "" : ": " + e.detail) +
                 (i == 0 ? "; nothing was restored" : "; the parts before it stay restored");
      return e;
    }
    std::string undo = "the parts before it were put back";
    // In restore order again, the failed part too (it may have changed half).
    for (size_t j = 0; j <= i; ++j) {
      if (Status back = LoadPart(parts[j], *before); !back) {
        undo = std::string("putting back ") + ToString(parts[j]) + " failed too (" +
               back.error().Message() + ")";
        break;
      }
    }
    Error e = loaded.error();
    e.detail = std::string("restoring ") + ToString(parts[i]) + " failed" +
               (e.detail.empty() ? "" : ": " + e.detail) + "; " + undo;
    return e;
  }
  return Ok();
}

}  // namespace virt
