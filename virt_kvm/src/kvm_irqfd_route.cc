// KvmIrqFdRoute: forwards to the shared core under the route's own lock.
#include "kvm_irqfd_route.h"

#include <utility>

namespace virt::kvm {

KvmIrqFdRoute::KvmIrqFdRoute(std::shared_ptr<KvmIrqFdCore> core, Gsi gsi, Event event)
    : core_(std::move(core)), gsi_(gsi), event_(std::move(event)) {}

KvmIrqFdRoute::~KvmIrqFdRoute() {
  std::lock_guard lock(mu_);
  if (released_) return;
  released_ = true;
  Status s = core_->Drop(gsi_, event_.native_handle());
  // After the partition is gone destruction just closes the event: nothing to report.
  if (!s && s.error().code != ErrorCode::kPartitionGone) core_->Report(s.error());
}

Status KvmIrqFdRoute::CheckNotReleased(const char* op) const {
  if (!released_) return Ok();
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi_) + " was released");
}

Status KvmIrqFdRoute::SetMsi(const MsiMessage& msi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::SetMsi"); !s) return s;
  return core_->SetMsi(gsi_, event_.native_handle(), msi);
}

Status KvmIrqFdRoute::ClearMsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::ClearMsi"); !s) return s;
  return core_->ClearMsi(gsi_, event_.native_handle());
}

std::optional<MsiMessage> KvmIrqFdRoute::msi() const {
  std::lock_guard lock(mu_);
  if (released_) return std::nullopt;
  return core_->CurrentMsi(gsi_);
}

Status KvmIrqFdRoute::Release() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::Release"); !s) return s;
  released_ = true;
  return core_->Drop(gsi_, event_.native_handle());
}

}  // namespace virt::kvm
