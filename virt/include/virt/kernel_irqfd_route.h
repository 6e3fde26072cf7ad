// KernelIrqFdRoute: one route (GSI + eventfd [+ resample eventfd]) of a KernelIrqFd.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <utility>

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
//
// Only KernelIrqFd creates these, in memory its shared state keeps for routes (no malloc per
// route); deleting one (the unique_ptr NewRoute returned) runs the destructor and hands the
// memory back there. So `new KernelIrqFdRoute` does not compile.
class KernelIrqFdRoute final : public IrqFdRoute {
 public:
  ~KernelIrqFdRoute() override;
  static void* operator new(std::size_t) = delete;
  static void* operator new[](std::size_t) = delete;
  // The destroying delete of every `delete` of a route (the virtual destructor selects it).
  static void operator delete(KernelIrqFdRoute* route, std::destroying_delete_t);

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
  friend class KernelIrqFdCore;
  // `owner` is the ticket the core gave with `gsi`; the core has counted the route's reference.
  KernelIrqFdRoute(KernelIrqFdCore* core, Gsi gsi, uint64_t owner, Event&& event)
      : core_(core), gsi_(gsi), owner_(owner), event_(std::move(event)) {}

  // The resample event's fd, creating the event on first use.
  Result<int> ResampleFd();
  // SetMsi of a level-triggered MSI with resample on: the resample event first.
  Status SetLevelMsi(const MsiMessage& msi);

  // One cache line in all (docs/performance.md, route programming).
  KernelIrqFdCore* const core_;  // one of the core's references: FreeRoute gives it back
  const Gsi gsi_;
  // Set once by Release or destruction. Only a fast path for calls made after Release returned:
  // the core's ticket check, under its lock, is what orders a call against a concurrent Release
  // (so relaxed loads suffice; the exchange makes exactly one caller run the teardown).
  std::atomic<bool> released_{false};
  const uint64_t owner_;  // the core acts on gsi_ only while its slot carries this ticket
  Event event_;
  // Owned; published once by a compare-exchange (release) of a complete Event, so a reader that
  // loads it non-null (acquire) sees it whole; a racing creator that loses deletes its own.
  // Never replaced; deleted after the teardown (the kernel may still signal it until then).
  std::atomic<Event*> resample_{nullptr};
};

}  // namespace virt
