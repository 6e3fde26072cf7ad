// UserModeIrqFdRoute: one route (GSI + owned Event) of a UserModeIrqFd; teardown on destruction.
#pragma once

#include <memory>
#include <mutex>

#include "user_mode_irqfd_core.h"
#include "virt/irqfd_route.h"

namespace virt {

class UserModeIrqFdRoute final : public IrqFdRoute {
 public:
  UserModeIrqFdRoute(std::shared_ptr<UserModeIrqFdCore> core, Gsi gsi, Event event);
  // Drops the route (if not released) before the event closes; failures go to the handler.
  ~UserModeIrqFdRoute() override;

  Gsi gsi() const override { return gsi_; }
  const Event& event() const override { return event_; }
  Status SetMsi(const MsiMessage& msi) override;
  Status ClearMsi() override;
  std::optional<MsiMessage> msi() const override;
  Status Release() override;

 private:
  Status CheckNotReleased(const char* op) const;

  std::shared_ptr<UserModeIrqFdCore> core_;
  const Gsi gsi_;
  const Event event_;      // watched by the core's poller while the route is enabled
  mutable std::mutex mu_;  // serialises calls on this route, including against Release
  bool released_ = false;  // guarded by mu_
};

}  // namespace virt
