// PartwiseVcpuState: the one place where a vCPU restore's order, refusals and rollback live.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "virt/vcpu_state_control.h"

namespace virt {
namespace {

// A set of parts as bits (1 << part's number); the parts are numbered 1..11, and any other
// value a caller passes is bit 31, which no backend supports.
using PartSet = uint32_t;
constexpr PartSet kUnknownPart = PartSet{1} << 31;
constexpr PartSet Bit(VcpuStatePart p) {
  const auto n = static_cast<unsigned>(p);
  return n < 31 ? PartSet{1} << n : kUnknownPart;
}
static_assert(static_cast<unsigned>(VcpuStatePart::kTsc) < 31);

PartSet SetOf(std::span<const VcpuStatePart> parts) {
  PartSet set = 0;
  for (VcpuStatePart p : parts) set |= Bit(p);
  return set;
}

// The name of the first of `parts` in restore order ("unknown" for a value that is no part).
const char* FirstName(PartSet parts) {
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if ((parts & Bit(p)) != 0) return ToString(p);
  }
  return "unknown";
}

}  // namespace

Status VcpuStateControl::SaveStateInto(VcpuState& into, std::span<const VcpuStatePart> parts) {
  if (const PartSet missing = SetOf(parts) & ~SetOf(supported_parts()); missing != 0) {
    return Error::Make(ErrorCode::kUnavailable, "VcpuStateControl::SaveState",
                       std::string("this backend cannot save part ") + FirstName(missing));
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

Status PartwiseVcpuState::SaveParts(std::span<const VcpuStatePart> parts, VcpuState& into,
                                    size_t& failed) {
  for (size_t i = 0; i < parts.size(); ++i) {
    if (Status s = SavePart(parts[i], into); !s) {
      failed = i;
      return s;
    }
  }
  return Ok();
}

Status PartwiseVcpuState::LoadParts(std::span<const VcpuStatePart> parts, const VcpuState& from,
                                    size_t& failed) {
  for (size_t i = 0; i < parts.size(); ++i) {
    if (Status s = LoadPart(parts[i], from); !s) {
      failed = i;
      return s;
    }
  }
  return Ok();
}

namespace {

// The error paths, out of line so that the save and restore paths stay a few cache lines.
[[gnu::cold, gnu::noinline]] Error SaveFailed(VcpuStatePart part, Error e) {
  e.detail = std::string("saving ") + ToString(part) + (e.detail.empty() ? "" : ": ") + e.detail;
  return e;
}

[[gnu::cold, gnu::noinline]] Error RestoreFailed(VcpuStatePart part, Error e, std::string_view after) {
  e.detail = std::string("restoring ") + ToString(part) + " failed" +
             (e.detail.empty() ? "" : ": " + e.detail) + "; " + std::string(after);
  return e;
}

[[gnu::cold, gnu::noinline]] Error Unavailable(const char* op, std::string_view backend,
                                               const char* what, PartSet parts,
                                               const char* after) {
  return Error::Make(ErrorCode::kUnavailable, op,
                     std::string(backend) + " cannot " + what + " part " + FirstName(parts) + after);
}

[[gnu::cold, gnu::noinline]] Error OtherBackend(const std::string& saved, std::string_view ours) {
  return Error::Make(ErrorCode::kInvalidArgument, "VcpuStateControl::RestoreState",
                     "the state was saved by backend " + saved + ", this is " + std::string(ours));
}

}  // namespace

Status PartwiseVcpuState::SaveStateInto(VcpuState& into, std::span<const VcpuStatePart> parts) {
  const PartSet supported = SetOf(supported_parts());
  const PartSet wanted = parts.empty() ? supported : SetOf(parts);
  if (const PartSet missing = wanted & ~supported; missing != 0) [[unlikely]] {
    return Unavailable("VcpuStateControl::SaveState", backend_name(), "save", missing, "");
  }
  into.backend = backend_name();
  // The parts asked for, in restore order whatever order `parts` has; the others are dropped.
  std::array<VcpuStatePart, kVcpuRestoreOrder.size()> list{};
  size_t count = 0;
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if ((wanted & Bit(p)) != 0) {
      list[count++] = p;
    } else {
      into.Reset(p);
    }
  }
  size_t failed = 0;
  if (Status s = SaveParts({list.data(), count}, into, failed); !s) [[unlikely]] {
    into = VcpuState{};
    return SaveFailed(list[failed], s.error());
  }
  return Ok();
}

Status PartwiseVcpuState::RestoreState(const VcpuState& state, RestoreMode mode) {
  if (state.backend != backend_name()) [[unlikely]] {
    return OtherBackend(state.backend, backend_name());
  }
  // The parts present, in restore order (no allocation: a restore is a hot path of migration).
  std::array<VcpuStatePart, kVcpuRestoreOrder.size()> present{};
  size_t count = 0;
  PartSet present_set = 0;
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if (state.Has(p)) {
      present[count++] = p;
      present_set |= Bit(p);
    }
  }
  const std::span<const VcpuStatePart> parts(present.data(), count);
  if (const PartSet missing = present_set & ~SetOf(supported_parts()); missing != 0) [[unlikely]] {
    return Unavailable("VcpuStateControl::RestoreState", backend_name(), "restore", missing,
                       "; nothing was changed");
  }
  if (mode == RestoreMode::kRollBackOnFailure) return RestoreRollingBack(state, parts);
  size_t failed = 0;
  Status loaded = LoadParts(parts, state, failed);
  if (loaded) [[likely]] return Ok();
  return RestoreFailed(parts[failed], loaded.error(),
                       failed == 0 ? "nothing was restored" : "the parts before it stay restored");
}

// kRollBackOnFailure: a save of the same parts first, put back if a part fails.
Status PartwiseVcpuState::RestoreRollingBack(const VcpuState& state,
                                             std::span<const VcpuStatePart> parts) {
  auto before = SaveState(parts);
  if (!before) return before.error();
  size_t failed = 0;
  Status loaded = LoadParts(parts, state, failed);
  if (loaded) return Ok();
  std::string undo = "the parts before it were put back";
  // In restore order again, the failed part too (it may have changed half).
  size_t back_failed = 0;
  if (Status back = LoadParts(parts.first(failed + 1), *before, back_failed); !back) {
    undo = std::string("putting back ") + ToString(parts[back_failed]) + " failed too (" +
           back.error().Message() + ")";
  }
  return RestoreFailed(parts[failed], loaded.error(), undo);
}

}  // namespace virt
