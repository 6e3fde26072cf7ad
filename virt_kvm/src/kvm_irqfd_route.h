// KvmIrqFdRoute: one route (GSI + eventfd) of a KVM partition; teardown on destruction.
#pragma once

#include <memory>
#include <mutex>

#include "kvm_irqfd.h"
#include "virt/irqfd_route.h"

namespace virt::kvm {

class KvmIrqFdRoute final : public IrqFdRoute {
 public:
  KvmIrqFdRoute(std::shared_ptr<KvmIrqFdCore> core, Gsi gsi, Event event);
  ~KvmIrqFdRoute() override;

  Gsi gsi() const override { return gsi_; }
  const Event& event() const override { return event_; }
  Status SetMsi(const MsiMessage& msi) override;
  Status ClearMsi() override;
  std::optional<MsiMessage> msi() const override;
  Status Release() override;

 private:
  Status CheckNotReleased(const char* op) const;

  std::shared_ptr<KvmIrqFdCore> core_;
  const Gsi gsi_;
  Event event_;
  mutable std::mutex mu_;  // orders Release against concurrent use of the same route
  bool released_ = false;  // guarded by mu_
};

}  // namespace virt::kvm
