// KernelIrqFdRoute: one route (GSI + eventfd [+ resample eventfd]) of a KernelIrqFd.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "virt/event.h"
#include "virt/irqfd_route.h"

namespace virt {

class KernelIrqFdCore;

// Every route a KernelIrqFd hands out is one of these (dynamic_cast the IrqFdRoute). With
// KernelIrqFd::Options::resample, a route whose MSI is level-triggered (data bit 15) is
// registered with the kernel's RESAMPLE flag: the kernel signals resample_event() when the
// guest ends the interrupt (EOI), and a device whose line is still asserted signals event()
// again. Edge MSIs are registered without it. Switching a live route between the two
// re-registers it (deassign, push, assign), so the switch is never visible half-done.
// Destruction tears the route down (see IrqFdRoute).
class KernelIrqFdRoute final : public IrqFdRoute {
 public:
  KernelIrqFdRoute(std::shared_ptr<KernelIrqFdCore> core, Gsi gsi, Event event);
  ~KernelIrqFdRoute() override;

  Gsi gsi() const override { return gsi_; }
  const Event& event() const override { return event_; }
  // A level-triggered MSI (with resample on) creates the resample event first; on failure
  // nothing changes.
  Status SetMsi(const MsiMessage& msi) override;
  Status ClearMsi() override;
  std::optional<MsiMessage> msi() const override;
  Status Release() override;

  // The resample event, created the first time the route gets a level-triggered MSI; nullptr
  // before (and always without resample support). Owned by the route and stable from then on.
  const Event* resample_event() const;

 private:
  Status CheckNotReleased(const char* op) const;

  std::shared_ptr<KernelIrqFdCore> core_;
  const Gsi gsi_;
  Event event_;
  mutable std::mutex mu_;  // orders Release against concurrent use of the same route
  bool released_ = false;  // guarded by mu_
  Event resample_;         // guarded by mu_; created once, then never replaced
};

}  // namespace virt
