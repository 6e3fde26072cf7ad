// VcpuStateControl: the optional capability of saving and restoring a whole vCPU (Vcpu::state()).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "virt/result.h"
#include "virt/vcpu_state.h"

namespace virt {

// What RestoreState does when a part fails half way.
enum class RestoreMode {
  // Puts the parts already restored back from a save taken first (costs one save of the parts).
  kRollBackOnFailure,
  // Stops at the failed part and says which it was; the parts before it stay restored. For a
  // fresh vCPU that the VMM discards when its restore fails (a snapshot or migration target):
  // no extra save, so the restore costs exactly the hypervisor's set calls.
  kStopOnFailure,
};

// Saves and restores a vCPU's state, whole or part by part. Called from the vCPU's own thread
// while it is not in Run (stop it with Cancel first). Every backend's restore goes through
// PartwiseVcpuState, so the order (kVcpuRestoreOrder), the refusals and the rollback are the
// same everywhere.
class VcpuStateControl {
 public:
  virtual ~VcpuStateControl() = default;

  // The parts this backend saves and restores, in kVcpuRestoreOrder.
  virtual std::span<const VcpuStatePart> supported_parts() const = 0;

  // Saves `parts` (every supported part when empty). kUnavailable naming a part the backend
  // does not have. The state's backend is the hypervisor's name.
  virtual Result<VcpuState> SaveState(std::span<const VcpuStatePart> parts = {}) = 0;

  // The same save into `into`, reusing the storage its parts already have (a VMM that saves
  // repeatedly, e.g. the rounds of a live migration, keeps one VcpuState per vCPU and allocates
  // nothing after the first save). Parts not asked for are reset; `into.backend` is set. Refused
  // (kUnavailable, `into` unchanged) as SaveState refuses; when a part's read fails, `into` is
  // left empty (no backend, no part) and the error says which part failed.
  virtual Status SaveStateInto(VcpuState& into, std::span<const VcpuStatePart> parts = {});

  // Restores the parts `state` holds, in kVcpuRestoreOrder. Refused before anything changes:
  // kInvalidArgument when state.backend names another backend, kUnavailable naming the first
  // part present that this backend cannot restore (a state is never partly dropped). When a
  // part fails, the error (the failed call's code) says which part failed; with
  // kRollBackOnFailure the parts already restored are put back from a save taken first and the
  // error also says whether putting back succeeded.
  virtual Status RestoreState(const VcpuState& state, RestoreMode mode) = 0;
  Status RestoreState(const VcpuState& state) {
    return RestoreState(state, RestoreMode::kRollBackOnFailure);
  }
};

// The shared implementation: a backend supplies one save and one load per part; ordering,
// refusals and rollback live here.
class PartwiseVcpuState : public VcpuStateControl {
 public:
  Result<VcpuState> SaveState(std::span<const VcpuStatePart> parts = {}) override;
  Status SaveStateInto(VcpuState& into, std::span<const VcpuStatePart> parts = {}) override;
  using VcpuStateControl::RestoreState;
  Status RestoreState(const VcpuState& state, RestoreMode mode) override;

 protected:
  // Hypervisor::name() of the backend.
  virtual std::string_view backend_name() const = 0;
  // Reads `part` into `into` (sets that optional; a part already present may have its storage
  // reused). Only called for supported parts.
  virtual Status SavePart(VcpuStatePart part, VcpuState& into) = 0;
  // Loads `part` from `from` (where it is present). Only called for supported parts.
  virtual Status LoadPart(VcpuStatePart part, const VcpuState& from) = 0;
  // Saves / loads `parts` (supported ones, in restore order) one after another and stops at the
  // first that fails, with `failed` set to its index. The defaults call SavePart / LoadPart for
  // each; a backend may override them to make its calls without one virtual call per part.
  virtual Status SaveParts(std::span<const VcpuStatePart> parts, VcpuState& into, size_t& failed);
  virtual Status LoadParts(std::span<const VcpuStatePart> parts, const VcpuState& from,
                           size_t& failed);

 private:
  Status RestoreRollingBack(const VcpuState& state, std::span<const VcpuStatePart> parts);
};

}  // namespace virt
