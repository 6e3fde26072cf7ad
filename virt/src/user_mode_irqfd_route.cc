// UserModeIrqFdRoute: forwards to the shared core under the route's own lock.
#include "user_mode_irqfd_route.h"

#include <string>
#include <utility>

namespace virt {

UserModeIrqFdRoute::UserModeIrqFdRoute(std::shared_ptr<UserModeIrqFdCore> core, Gsi gsi,
                                       Event event)
    : core_(std::move(core)), gsi_(gsi), event_(std::move(event)) {}

UserModeIrqFdRoute::~UserModeIrqFdRoute() {
  std::lock_guard lock(mu_);
  if (released_) return;
  released_ = true;
  if (Status s = core_->Drop(gsi_); !s) core_->Report(s.error());
}

Status UserModeIrqFdRoute::CheckNotReleased(const char* op) const {
  if (!released_) return Ok();
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi_) + " was released");
}

Status UserModeIrqFdRoute::SetMsi(const MsiMessage& msi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::SetMsi"); !s) return s;
  return core_->SetMsi(gsi_, event_, msi);
}

Status UserModeIrqFdRoute::ClearMsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::ClearMsi"); !s) return s;
  return core_->ClearMsi(gsi_);
}

std::optional<MsiMessage> UserModeIrqFdRoute::msi() const {
  std::lock_guard lock(mu_);
  if (released_) return std::nullopt;
  return core_->CurrentMsi(gsi_);
}

Status UserModeIrqFdRoute::Release() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::Release"); !s) return s;
  released_ = true;
  return core_->Drop(gsi_);
}

}  // namespace virt
