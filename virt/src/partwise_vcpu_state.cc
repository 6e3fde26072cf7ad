// PartwiseVcpuState: the one place where a vCPU restore's order, refusals and rollback live.
#include <array>
#include <cstdint>
#include <string>

#include "virt/vcpu_state_control.h"

namespace virt {
namespace {

// A set of parts as bits (1 << part's number); the parts are numbered 1..11.
using PartSet = uint32_t;
constexpr PartSet Bit(VcpuStatePart p) { return PartSet{1} << static_cast<unsigned>(p); }
static_assert(static_cast<unsigned>(VcpuStatePart::kTsc) < 32);

PartSet SetOf(std::span<const VcpuStatePart> parts) {
  PartSet set = 0;
  for (VcpuStatePart p : parts) set |= Bit(p);
  return set;
}

}  // namespace

Status VcpuStateControl::SaveStateInto(VcpuState& into, std::span<const VcpuStatePart> parts) {
  const PartSet supported = SetOf(supported_parts());
  for (VcpuStatePart p : parts) {
    if ((supported & Bit(p)) == 0) {
      return Error::Make(ErrorCode::kUnavailable, "VcpuStateControl::SaveState",
                         std::string("this backend cannot save part ") + ToString(p));
    }
  }
  auto saved = SaveState(parts);
  if (!saved) {
    into = VcpuState{};
    return saved.error();
  }
  into = std::move(*saved);
  return Ok();
}

Result<VcpuState> PartwiseVcpuState::SaveState(std::span<const VcpuStatePart> parts) {
  VcpuState state;
  if (Status s = SaveStateInto(state, parts); !s) return s.error();
  return state;
}

Status PartwiseVcpuState::SaveStateInto(VcpuState& into, std::span<const VcpuStatePart> parts) {
  const PartSet supported = SetOf(supported_parts());
  const PartSet wanted = parts.empty() ? supported : SetOf(parts);
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if ((wanted & Bit(p)) != 0 && (supported & Bit(p)) == 0) {
      return Error::Make(ErrorCode::kUnavailable, "VcpuStateControl::SaveState",
                         std::string(backend_name()) + " cannot save part " + ToString(p));
    }
  }
  into.backend = backend_name();
  for (VcpuStatePart p : kVcpuRestoreOrder) {  // in order, whatever order `parts` has
    if ((wanted & Bit(p)) == 0) {
      into.Reset(p);
      continue;
    }
    if (Status s = SavePart(p, into); !s) {
      into = VcpuState{};
      Error e = s.error();
      e.detail = std::string("saving ") + ToString(p) + (e.detail.empty() ? "" : ": ") + e.detail;
      return e;
    }
  }
  return Ok();
}

Status PartwiseVcpuState::RestoreState(const VcpuState& state, RestoreMode mode) {
  constexpr const char* kOp = "VcpuStateControl::RestoreState";
  if (state.backend != backend_name()) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the state was saved by backend " + state.backend + ", this is " +
                           std::string(backend_name()));
  }
  // The parts present, in restore order (no allocation: a restore is a hot path of migration).
  std::array<VcpuStatePart, kVcpuRestoreOrder.size()> present{};
  size_t count = 0;
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if (state.Has(p)) present[count++] = p;
  }
  const std::span<const VcpuStatePart> parts(present.data(), count);
  const PartSet supported = SetOf(supported_parts());
  for (VcpuStatePart p : parts) {
    if ((supported & Bit(p)) == 0) {
      return Error::Make(ErrorCode::kUnavailable, kOp,
                         std::string(backend_name()) + " cannot restore part " + ToString(p) +
                             "; nothing was changed");
    }
  }
  if (mode == RestoreMode::kRollBackOnFailure) return RestoreRollingBack(state, parts);
  for (size_t i = 0; i < parts.size(); ++i) {
    Status loaded = LoadPart(parts[i], state);
    if (loaded) continue;
    Error e = loaded.error();
    e.detail = std::string("restoring ") + ToString(parts[i]) + " failed" +
               (e.detail.empty() ? "" : ": " + e.detail) +
               (i == 0 ? "; nothing was restored" : "; the parts before it stay restored");
    return e;
  }
  return Ok();
}

// kRollBackOnFailure: a save of the same parts first, put back if a part fails.
Status PartwiseVcpuState::RestoreRollingBack(const VcpuState& state,
                                             std::span<const VcpuStatePart> parts) {
  auto before = SaveState(parts);
  if (!before) return before.error();
  for (size_t i = 0; i < parts.size(); ++i) {
    Status loaded = LoadPart(parts[i], state);
    if (loaded) continue;
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
