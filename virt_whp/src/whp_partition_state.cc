// WhpPartitionState: the reference time through partition properties, and the routes.
#include "whp_partition_state.h"

#include <algorithm>
#include <string>

#include "whp_partition.h"

namespace virt::whp {
namespace {

constexpr uint64_t kNsPerReferenceTick = 100;

}  // namespace

WhpPartitionState::WhpPartitionState(WhpPartitionHandle& partition, IrqFd* irqfd)
    : partition_(partition), irqfd_(irqfd) {
  parts_.push_back(PartitionStatePart::kClock);
  if (irqfd_ != nullptr) parts_.push_back(PartitionStatePart::kRoutes);
}

bool WhpPartitionState::Supports(PartitionStatePart part) const {
  return std::find(parts_.begin(), parts_.end(), part) != parts_.end();
}

std::string WhpPartitionState::Missing(PartitionStatePart part) const {
  switch (part) {
    case PartitionStatePart::kIrqchip:
      return "WHP has no in-kernel PIC or IOAPIC (it emulates only the local APIC), so there is "
             "no irqchip part";
    case PartitionStatePart::kPit:
      return "WHP has no in-kernel PIT, so there is no PIT part";
    case PartitionStatePart::kRoutes:
      return "this partition has no local APIC (PartitionConfig::irqchip), so no irqfd "
             "routes";
    case PartitionStatePart::kClock:
      break;
  }
  return std::string("this partition has no ") + ToString(part);
}

Status WhpPartitionState::SaveClock(PartitionState& into) {
  uint64_t ticks = 0;
  uint32_t written = 0;
  if (Status s = partition_.api().GetPartitionProperty(partition_.get(),
                                                       WHvPartitionPropertyCodeReferenceTime,
                                                       &ticks, sizeof ticks, &written);
      !s) {
    return s;
  }
  if (written != sizeof ticks) {
    return Error::Make(ErrorCode::kNative, "WHvGetPartitionProperty",
                       "the reference time came back as " + std::to_string(written) +
                           " bytes, not 8");
  }
  into.clock = ClockState{ticks * kNsPerReferenceTick, 0};
  return Ok();
}

Status WhpPartitionState::LoadClock(const ClockState& clock) {
  WhpApi& api = partition_.api();
  if (Status s = api.SuspendPartitionTime(partition_.get()); !s) return s;
  const uint64_t ticks = clock.ns / kNsPerReferenceTick;
  Status wrote = api.SetPartitionProperty(partition_.get(), WHvPartitionPropertyCodeReferenceTime,
                                          &ticks, sizeof ticks);
  Status resumed = api.ResumePartitionTime(partition_.get());
  if (!wrote) {
    Error e = wrote.error();
    if (!resumed) e.detail += "; resuming the time failed too (" + resumed.error().Message() + ")";
    return e;
  }
  return resumed;
}

Result<PartitionState> WhpPartitionState::SaveState(std::span<const PartitionStatePart> parts) {
  PartitionState state;
  state.backend = "whp";
  if (parts.empty()) parts = parts_;
  for (PartitionStatePart p : kPartitionRestoreOrder) {
    if (std::find(parts.begin(), parts.end(), p) == parts.end()) continue;
    if (!Supports(p)) {
      return Error::Make(ErrorCode::kUnavailable, "PartitionStateControl::SaveState", Missing(p));
    }
    Status s = Ok();
    if (p == PartitionStatePart::kClock) {
      s = SaveClock(state);
    } else {
      auto routes = irqfd_->Routes();
      if (routes) {
        state.routes = std::move(*routes);
      } else {
        s = routes.error();
      }
    }
    if (!s) {
      Error e = s.error();
      e.detail = std::string("saving ") + ToString(p) + (e.detail.empty() ? "" : ": ") + e.detail;
      return e;
    }
  }
  return state;
}

Result<std::vector<std::unique_ptr<IrqFdRoute>>> WhpPartitionState::RestoreState(
    const PartitionState& state) {
  constexpr const char* kOp = "PartitionStateControl::RestoreState";
  if (state.backend != "whp") {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the state was saved by backend " + state.backend + ", this is whp");
  }
  for (PartitionStatePart p : state.parts()) {
    if (!Supports(p)) {
      return Error::Make(ErrorCode::kUnavailable, kOp, Missing(p) + "; nothing was changed");
    }
  }
  if (state.clock) {
    if (Status s = LoadClock(*state.clock); !s) {
      Error e = s.error();
      e.detail = "restoring clock failed" + (e.detail.empty() ? "" : ": " + e.detail);
      return e;
    }
  }
  if (!state.routes) return std::vector<std::unique_ptr<IrqFdRoute>>{};
  return RestoreRoutes(*irqfd_, *state.routes);
}

}  // namespace virt::whp
