// MshvIrqFdRouteImpl: one route (GSI + eventfd [+ resample eventfd]); teardown on destruction.
#pragma once

#include <memory>
#include <mutex>

#include "mshv_irqfd.h"
#include "virt/mshv/mshv_irqfd_route.h"

namespace virt::mshv {

class MshvIrqFdRouteImpl final : public MshvIrqFdRoute {
 public:
  MshvIrqFdRouteImpl(std::shared_ptr<MshvIrqFdCore> core, Gsi gsi, Event event);
  ~MshvIrqFdRouteImpl() override;

  Gsi gsi() const override { return gsi_; }
  const Event& event() const override { return event_; }
  // A level-triggered MSI creates the resample event first (eventfd); on failure nothing changes.
  Status SetMsi(const MsiMessage& msi) override;
  Status ClearMsi() override;
  std::optional<MsiMessage> msi() const override;
  Status Release() override;
  const Event* resample_event() const override;

 private:
  Status CheckNotReleased(const char* op) const;

  std::shared_ptr<MshvIrqFdCore> core_;
  const Gsi gsi_;
  Event event_;
  mutable std::mutex mu_;  // orders Release against concurrent use of the same route
  bool released_ = false;  // guarded by mu_
  Event resample_;         // guarded by mu_; created once, then never replaced
};

}  // namespace virt::mshv
