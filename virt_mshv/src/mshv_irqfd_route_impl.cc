// MshvIrqFdRouteImpl: forwards to the shared core under the route's own lock.
#include "mshv_irqfd_route_impl.h"

#include <string>
#include <utility>

namespace virt::mshv {

MshvIrqFdRouteImpl::MshvIrqFdRouteImpl(std::shared_ptr<MshvIrqFdCore> core, Gsi gsi, Event event)
    : core_(std::move(core)), gsi_(gsi), event_(std::move(event)) {}

MshvIrqFdRouteImpl::~MshvIrqFdRouteImpl() {
  std::lock_guard lock(mu_);
  if (released_) return;
  released_ = true;
  if (Status s = core_->Drop(gsi_, event_.native_handle()); !s) core_->Report(s.error());
}

Status MshvIrqFdRouteImpl::CheckNotReleased(const char* op) const {
  if (!released_) return Ok();
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi_) + " was released");
}

Status MshvIrqFdRouteImpl::SetMsi(const MsiMessage& msi) {
  auto decoded = msi.Decode();
  if (!decoded) return decoded.error();
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::SetMsi"); !s) return s;
  int resample_fd = -1;
  if (decoded->trigger_mode == TriggerMode::kLevel) {
    if (!resample_.valid()) {
      auto created = Event::Create();
      if (!created) return created.error();
      resample_ = std::move(*created);
    }
    resample_fd = resample_.native_handle();
  }
  return core_->SetMsi(gsi_, event_.native_handle(), resample_fd, msi);
}

Status MshvIrqFdRouteImpl::ClearMsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::ClearMsi"); !s) return s;
  return core_->ClearMsi(gsi_, event_.native_handle());
}

std::optional<MsiMessage> MshvIrqFdRouteImpl::msi() const {
  std::lock_guard lock(mu_);
  if (released_) return std::nullopt;
  return core_->CurrentMsi(gsi_);
}

Status MshvIrqFdRouteImpl::Release() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::Release"); !s) return s;
  released_ = true;
  return core_->Drop(gsi_, event_.native_handle());
}

const Event* MshvIrqFdRouteImpl::resample_event() const {
  std::lock_guard lock(mu_);
  return resample_.valid() ? &resample_ : nullptr;
}

}  // namespace virt::mshv
