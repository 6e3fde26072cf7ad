// MshvPartitionState: the reference time through partition properties, and the routes.
#include "mshv_partition_state.h"

#include <algorithm>
#include <string>
#include <utility>

#include "mshv_hvcall.h"

namespace virt::mshv {
namespace {

constexpr uint64_t kNsPerReferenceTick = 100;

// Why a part is missing, for the kUnavailable errors.
std::string Missing(PartitionStatePart part) {
  switch (part) {
    case PartitionStatePart::kIrqchip:
      return "MSHV has no in-kernel PIC or IOAPIC (the hypervisor emulates only the LAPIC), so "
             "there is no irqchip part";
    case PartitionStatePart::kPit:
      return "MSHV has no in-kernel PIT, so there is no PIT part";
    case PartitionStatePart::kRoutes:
      return "this partition has no LAPIC (PartitionConfig::irqchip), so no irqfd routes";
    case PartitionStatePart::kClock:
      break;
  }
  return std::string("this partition has no ") + ToString(part);
}

}  // namespace

MshvPartitionState::MshvPartitionState(std::shared_ptr<MshvIoctl> ioctl, int partition_fd,
                                       IrqFd* irqfd)
    : ioctl_(std::move(ioctl)), partition_fd_(partition_fd), irqfd_(irqfd) {
  parts_.push_back(PartitionStatePart::kClock);
  if (irqfd_ != nullptr) parts_.push_back(PartitionStatePart::kRoutes);
}

bool MshvPartitionState::Supports(PartitionStatePart part) const {
  return std::find(parts_.begin(), parts_.end(), part) != parts_.end();
}

Status MshvPartitionState::SaveClock(PartitionState& into) {
  auto ticks =
      GetPartitionProperty(*ioctl_, partition_fd_, HV_PARTITION_PROPERTY_REFERENCE_TIME);
  if (!ticks) return ticks.error();
  into.clock = ClockState{*ticks * kNsPerReferenceTick, 0};
  return Ok();
}

Status MshvPartitionState::LoadClock(const ClockState& clock) {
  // The reference time can only be written while it is frozen; it runs on from the new value.
  if (Status s = SetPartitionProperty(*ioctl_, partition_fd_, HV_PARTITION_PROPERTY_TIME_FREEZE, 1);
      !s) {
    return s;
  }
  Status wrote = SetPartitionProperty(*ioctl_, partition_fd_, HV_PARTITION_PROPERTY_REFERENCE_TIME,
                                      clock.ns / kNsPerReferenceTick);
  Status thawed =
      SetPartitionProperty(*ioctl_, partition_fd_, HV_PARTITION_PROPERTY_TIME_FREEZE, 0);
  if (!wrote) {
    Error e = wrote.error();
    if (!thawed) e.detail += "; unfreezing the time failed too (" + thawed.error().Message() + ")";
    return e;
  }
  return thawed;
}

Result<PartitionState> MshvPartitionState::SaveState(std::span<const PartitionStatePart> parts) {
  PartitionState state;
  state.backend = "mshv";
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

Result<std::vector<std::unique_ptr<IrqFdRoute>>> MshvPartitionState::RestoreState(
    const PartitionState& state) {
  constexpr const char* kOp = "PartitionStateControl::RestoreState";
  if (state.backend != "mshv") {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the state was saved by backend " + state.backend + ", this is mshv");
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

}  // namespace virt::mshv
