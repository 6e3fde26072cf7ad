// WhpTriggerIrqFdCore: the trigger state machine shared by a WhpTriggerIrqFd and its routes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "virt/event.h"
#include "virt/gsi_table.h"
#include "virt/irqfd.h"
#include "virt/msi_message.h"
#include "virt/result.h"
#include "virt/whp/whp_api.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

// Owned jointly by the WhpTriggerIrqFd and its routes, so a route that outlives the irqfd (or
// the partition) finds alive_ == false instead of freed memory. mu_ guards everything but the
// error handler; every WhpApi call except the sinks' SetEvent is made under it, and the route
// events' sinks are set and cleared under it (lock order mu_ -> event lock; a sink takes no lock
// of ours). The design and ordering rules are WhpTriggerIrqFd's (see its header). Calls for
// one GSI come from one route, serialised by that route's lock.
class WhpTriggerIrqFdCore {
 public:
  WhpTriggerIrqFdCore(std::shared_ptr<WhpApi> api, WHV_PARTITION_HANDLE partition, GsiTable gsis);
  WhpTriggerIrqFdCore(const WhpTriggerIrqFdCore&) = delete;
  WhpTriggerIrqFdCore& operator=(const WhpTriggerIrqFdCore&) = delete;
  // Closes again the trigger event handles whose CloseHandle failed earlier; a second failure
  // goes to the error handler.
  ~WhpTriggerIrqFdCore();

  Result<Gsi> AllocateGsi();
  // Exactly `gsi` (GsiTable::AllocateAt's errors); kPartitionGone after Shutdown.
  Result<Gsi> AllocateGsiAt(Gsi gsi);
  // Every allocated GSI with its slot's MSI (nullopt while masked), by GSI, all read under mu_.
  Result<std::vector<RouteState>> Routes();
  // Enables (WHvCreateTrigger or WHvUpdateTriggerParameters, then event.SetSink) or retargets
  // (WHvUpdateTriggerParameters). `event` is the route's and must stay alive until Drop.
  Status SetMsi(Gsi gsi, const Event& event, const MsiMessage& msi);
  // Masks: event.ClearSink(); the trigger stays.
  Status ClearMsi(Gsi gsi, const Event& event);
  // Teardown: ClearSink, WHvDeleteTrigger (only while alive), CloseHandle, free the GSI.
  Status Drop(Gsi gsi, const Event& event);
  std::optional<MsiMessage> CurrentMsi(Gsi gsi);

  void BeginBatch();
  Status EndBatch();
  // Every call fails with kPartitionGone from now on; every sink is cleared.
  void Shutdown();

  void SetErrorHandler(IrqFd::ErrorHandler handler);
  // Sends `error` to the handler (stderr when none). Takes only handler_mu_.
  void Report(const Error& error);
  uint32_t allocated_gsis();

 private:
  struct Slot {
    WHV_TRIGGER_HANDLE trigger = nullptr;  // null: no trigger (or the partition took it)
    HANDLE trigger_event = nullptr;        // WHP's event for `trigger`; ours to close
    WHV_INTERRUPT_CONTROL control{};       // what the trigger delivers now
    std::optional<MsiMessage> msi;         // set exactly while the route's event has the sink
    const Event* event = nullptr;          // the route's event while its sink is set
  };

  Status CheckAlive(const char* op) const;
  static WHV_TRIGGER_PARAMETERS Parameters(const WHV_INTERRUPT_CONTROL& control);
  // event.SetSink(SetEvent(slot.trigger_event)); on failure no sink is left set.
  Status Arm(Slot& slot, const Event& event);
  // Undoes a WHvCreateTrigger whose route could not be armed. If WHvDeleteTrigger fails the
  // slot keeps the trigger (a masked route with a trigger is a normal state); failures are
  // reported, the caller returns its own error.
  void UndoCreate(Slot& slot);
  // CloseHandle(handle); a handle it refuses is kept in unclosed_ for the destructor.
  Status CloseTriggerEvent(HANDLE handle);

  const std::shared_ptr<WhpApi> api_;
  const WHV_PARTITION_HANDLE partition_;
  std::mutex mu_;
  bool alive_ = true;             // guarded by mu_
  GsiTable gsis_;                 // guarded by mu_
  std::vector<Slot> slots_;       // guarded by mu_; indexed by GSI
  uint32_t batch_depth_ = 0;      // guarded by mu_
  std::vector<HANDLE> unclosed_;  // guarded by mu_

  std::mutex handler_mu_;
  IrqFd::ErrorHandler on_error_;  // guarded by handler_mu_
};

}  // namespace virt::whp
