// WhpTriggerIrqFd: the IrqFd contract on WHP through interrupt triggers (WHvCreateTrigger).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "virt/irqfd.h"
#include "virt/result.h"
#include "virt/whp/whp_api.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

class WhpTriggerIrqFdCore;

// An IrqFd whose routes deliver through WHP interrupt triggers: a SetEvent on a trigger's event
// makes WHP inject the trigger's WHV_INTERRUPT_CONTROL with no user-mode hop.
//
// Two WHP facts shape the design. WHvCreateTrigger creates the trigger's event itself, while a
// route's event() must be the same handle for the route's whole life (devices hold it). And a
// trigger has no masked state, while signals that arrive during a mask must be delivered after
// the unmask and none before it. So:
//  - Each route owns a virt::Event made by Event::CreateWithSink at NewRoute: that is event(),
//    stable for life. Devices signal it with Event::Signal.
//  - Enable (SetMsi on a masked route without a trigger): MsiToInterruptControl first (an MSI
//    WHP cannot take fails with kInvalidArgument and no WHv call), then WHvCreateTrigger
//    (TriggerType Interrupt, that control) -> trigger + WHP's event; only then
//    event().SetSink(SetEvent(trigger event)), so the route is armed after its trigger is
//    installed. SetSink hands a count pending on the route's event over as one SetEvent, so
//    signals that arrived while masked are delivered right away, coalesced, as with a kernel
//    irqfd. Each later Signal is one SetEvent on the signalling thread (its count coalesces:
//    a trigger delivers one interrupt per SetEvent). A failing SetEvent is Signal's error and
//    that signal is not delivered, as when an eventfd write fails.
//    If SetSink fails the trigger is deleted and its event closed again: the route is left as
//    it was (masked, no trigger, the count still pending). Should WHvDeleteTrigger fail there
//    too, the route keeps the trigger, masked (the state ClearMsi leaves), and that failure is
//    reported to the error handler.
//  - Retarget (SetMsi while enabled): WHvUpdateTriggerParameters with the new control, skipped
//    when the control is unchanged. On failure the route keeps delivering its old MSI.
//  - Mask (ClearMsi): event().ClearSink(). When it returns no SetEvent for the route runs or will
//    run, and signals stay pending on the route's own event. The trigger is KEPT while masked:
//    without SetEvent it delivers nothing, and unmasking then costs no WHvCreateTrigger, only an
//    update when the MSI changed, then SetSink. A failure in either leaves the route masked.
//  - Teardown (Release/destructor): ClearSink -> WHvDeleteTrigger -> CloseHandle(trigger event)
//    -> free the GSI. The handle is closed and the GSI freed even when WHvDeleteTrigger fails:
//    that trigger stays in the partition, inert (no sink and no handle of ours can set its
//    event any more), until WHvDeletePartition removes it; the failure is returned by Release
//    and reported by the destructor. A handle CloseHandle refused stays ours: it is kept by the
//    shared state and closed again when that state goes (the IrqFd and all its routes gone), so
//    nothing leaks; the first failure is returned/reported.
// GSIs come from a GsiTable with 0-23 reserved (as UserModeIrqFd), so they run out with
// kExhausted like the kernel ones. They are purely library-side numbers: WHP never sees them (a
// trigger is named by its handle), so a snapshot's routes can be placed on their GSIs again in
// any partition (NewRouteAt) and nothing in WHP depends on the number. Batches: there is no
// table to push, so BeginBatch/EndBatch only nest (EndBatch without a batch:
// kFailedPrecondition) and push_count() stays 0; changes inside a batch take effect at once.
//
// Thread-safe: any thread may use any route. A route's calls serialise on its own lock, then
// on the shared state's lock, under which every WhpApi call but the sinks' SetEvent is made
// (like KernelIrqFd). Signals take only the route event's lock. Lock order: route -> shared
// state -> route event; the error handler's lock is a leaf.
//
// Lifetime: the partition calls Shutdown() right before WHvDeletePartition. From then on every
// route call fails with kPartitionGone, every sink is cleared (nothing reaches WHP any more) and
// destroying a route only closes its trigger's event handle: WHvDeletePartition removes the
// triggers themselves. Routes may outlive this object (they share its state); destroying it
// does not shut down, so routes keep working while the partition lives.
class WhpTriggerIrqFd final : public IrqFd {
 public:
  static constexpr uint32_t kDefaultGsiCapacity = 2048;
  static constexpr uint32_t kReservedGsis = 24;  // 0-23, the IOAPIC pins on x86

  // An irqfd for `partition` (set up, alive until Shutdown). kInvalidArgument for a null api or
  // a capacity <= kReservedGsis; kUnavailable when !api->HasTriggers() (Windows before 20H2:
  // use a UserModeIrqFd over WHvRequestInterrupt there). Makes no WHv call.
  static Result<std::unique_ptr<WhpTriggerIrqFd>> Create(
      std::shared_ptr<WhpApi> api, WHV_PARTITION_HANDLE partition,
      uint32_t gsi_capacity = kDefaultGsiCapacity);

  WhpTriggerIrqFd(const WhpTriggerIrqFd&) = delete;
  WhpTriggerIrqFd& operator=(const WhpTriggerIrqFd&) = delete;
  ~WhpTriggerIrqFd() override;

  // A masked route: a GSI and an Event::CreateWithSink event, no trigger yet (no WHv call).
  // kExhausted when no GSI is free, kPartitionGone after Shutdown.
  Result<std::unique_ptr<IrqFdRoute>> NewRoute() override;
  // As NewRoute, on exactly `gsi` (restoring a snapshot's routes; no WHv call):
  // kInvalidArgument for a GSI outside the table or reserved (0-23), kFailedPrecondition when a
  // route holds it, kPartitionGone after Shutdown. On any failure no GSI is taken.
  Result<std::unique_ptr<IrqFdRoute>> NewRouteAt(Gsi gsi) override;
  // Every live route's GSI and MSI (nullopt while masked, also when it kept its trigger), by
  // GSI, read under the shared state's lock so that no route change lands half-way through.
  // No WHv call; kPartitionGone after Shutdown.
  Result<std::vector<RouteState>> Routes() const override;
  void BeginBatch() override;
  Status EndBatch() override;
  // The handler may run under the shared state's lock: it must not call back into this irqfd
  // or its routes.
  void SetErrorHandler(ErrorHandler handler) override;
  void ReportError(const Error& error) override;
  uint64_t push_count() const override { return 0; }

  // The partition is about to be deleted (WHvDeletePartition). Clears every route's sink and
  // waits for running SetEvent calls; when it returns nothing reaches WHP through a route any
  // more and every route call fails with kPartitionGone. Makes no WHv call. Idempotent.
  void Shutdown();

  // GSIs held by routes (for tests).
  uint32_t allocated_gsis() const;

 private:
  explicit WhpTriggerIrqFd(std::shared_ptr<WhpTriggerIrqFdCore> core);

  std::shared_ptr<WhpTriggerIrqFdCore> core_;
};

}  // namespace virt::whp
