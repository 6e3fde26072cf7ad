// WhpTriggerIrqFdCore: trigger creation/retarget, masking by event sinks, teardown, shutdown.
#include "whp_irqfd_core.h"

#include <cstdio>
#include <utility>

#include "whp_interrupt.h"

namespace virt::whp {
namespace {

// Field by field: the controls are bit-fields, and two MSIs that differ only in bits WHP ignores
// (redirection hint, level assert) make the same control, which needs no update.
bool SameControl(const WHV_INTERRUPT_CONTROL& a, const WHV_INTERRUPT_CONTROL& b) {
  return a.Type == b.Type && a.DestinationMode == b.DestinationMode &&
         a.TriggerMode == b.TriggerMode && a.Destination == b.Destination && a.Vector == b.Vector;
}

}  // namespace

WhpTriggerIrqFdCore::WhpTriggerIrqFdCore(std::shared_ptr<WhpApi> api,
                                         WHV_PARTITION_HANDLE partition, GsiTable gsis)
    : api_(std::move(api)),
      partition_(partition),
      gsis_(std::move(gsis)),
      slots_(gsis_.capacity()) {}

WhpTriggerIrqFdCore::~WhpTriggerIrqFdCore() {
  // Every route is gone, so nothing else can touch these handles; they are still ours.
  for (HANDLE handle : unclosed_) {
    if (Status s = api_->CloseHandle(handle); !s) Report(s.error());
  }
}

Status WhpTriggerIrqFdCore::CheckAlive(const char* op) const {
  if (alive_) return Ok();
  return Error::Make(ErrorCode::kPartitionGone, op, "the WHP partition has been deleted");
}

WHV_TRIGGER_PARAMETERS WhpTriggerIrqFdCore::Parameters(const WHV_INTERRUPT_CONTROL& control) {
  WHV_TRIGGER_PARAMETERS parameters{};
  parameters.TriggerType = WHvTriggerTypeInterrupt;
  parameters.Interrupt = control;
  return parameters;
}

Result<Gsi> WhpTriggerIrqFdCore::AllocateGsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::NewRoute"); !s) return s.error();
  return gsis_.Allocate();
}

Result<Gsi> WhpTriggerIrqFdCore::AllocateGsiAt(Gsi gsi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::NewRouteAt"); !s) return s.error();
  return gsis_.AllocateAt(gsi);
}

Result<std::vector<RouteState>> WhpTriggerIrqFdCore::Routes() {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::Routes"); !s) return s.error();
  std::vector<RouteState> out;
  for (Gsi gsi = 0; gsi < gsis_.capacity(); ++gsi) {
    // slot.msi is set exactly while the route is armed: a masked route that kept its trigger
    // is listed masked, as it delivers nothing.
    if (gsis_.IsAllocated(gsi)) out.push_back({gsi, slots_[gsi].msi});
  }
  return out;
}

Status WhpTriggerIrqFdCore::Arm(Slot& slot, const Event& event) {
  // One SetEvent per Signal; its count coalesces, as a trigger delivers once per SetEvent.
  Status armed = event.SetSink([api = api_, handle = slot.trigger_event](uint64_t /*count*/) {
    return api->SetEvent(handle);
  });
  if (!armed) {
    // SetSink promises no sink on failure; make sure, since the trigger may go next and a sink
    // left behind would SetEvent a closed handle.
    event.ClearSink();
    return armed;
  }
  slot.event = &event;
  return Ok();
}

Status WhpTriggerIrqFdCore::CloseTriggerEvent(HANDLE handle) {
  Status closed = api_->CloseHandle(handle);
  if (!closed) unclosed_.push_back(handle);
  return closed;
}

void WhpTriggerIrqFdCore::UndoCreate(Slot& slot) {
  if (Status s = api_->DeleteTrigger(partition_, slot.trigger); !s) {
    Report(s.error());
    return;  // the route stays masked with its trigger; Drop deletes it
  }
  if (Status s = CloseTriggerEvent(slot.trigger_event); !s) Report(s.error());
  slot = Slot{};
}

Status WhpTriggerIrqFdCore::SetMsi(Gsi gsi, const Event& event, const MsiMessage& msi) {
  auto control = MsiToInterruptControl(msi);  // before any WHv call: on error nothing changes
  if (!control) return control.error();
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFdRoute::SetMsi"); !s) return s;
  Slot& slot = slots_[gsi];
  const bool created = slot.trigger == nullptr;
  if (created) {
    const WHV_TRIGGER_PARAMETERS parameters = Parameters(*control);
    WHV_TRIGGER_HANDLE trigger = nullptr;
    HANDLE trigger_event = nullptr;
    if (Status s = api_->CreateTrigger(partition_, parameters, &trigger, &trigger_event); !s) {
      return s;
    }
    slot.trigger = trigger;
    slot.trigger_event = trigger_event;
    slot.control = *control;
  } else if (!SameControl(slot.control, *control)) {
    // A retarget, or an unmask to another MSI. Racing signals get the old or the new control.
    if (Status s = api_->UpdateTriggerParameters(partition_, Parameters(*control), slot.trigger);
        !s) {
      return s;  // the trigger (and so the route) keeps its old control
    }
    slot.control = *control;
  }
  if (!slot.msi) {
    // Arm only now that the trigger is installed: the pending count goes out with `control`.
    if (Status s = Arm(slot, event); !s) {
      if (created) UndoCreate(slot);
      return s;  // masked as before; a count that was pending still is
    }
  }
  slot.msi = msi;
  return Ok();
}

Status WhpTriggerIrqFdCore::ClearMsi(Gsi gsi, const Event& event) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFdRoute::ClearMsi"); !s) return s;
  Slot& slot = slots_[gsi];
  // Once ClearSink returns no SetEvent for this route runs; later signals count on `event`.
  event.ClearSink();
  slot.event = nullptr;
  slot.msi.reset();
  return Ok();
}

Status WhpTriggerIrqFdCore::Drop(Gsi gsi, const Event& event) {
  std::lock_guard lock(mu_);
  // Detach first, so that no signal sets the trigger's event while it is deleted and closed.
  event.ClearSink();
  Slot& slot = slots_[gsi];
  Status result = Ok();
  if (slot.trigger_event != nullptr) {
    // After Shutdown, WHvDeletePartition has removed the trigger (or is about to).
    if (alive_ && slot.trigger != nullptr) {
      // On failure the trigger stays in the partition but is inert once its handle is closed:
      // go on, so neither the handle nor the GSI leaks.
      result = api_->DeleteTrigger(partition_, slot.trigger);
    }
    if (Status s = CloseTriggerEvent(slot.trigger_event); !s && result) result = s;
  }
  slot = Slot{};
  if (Status s = gsis_.Free(gsi); !s && result) result = s;
  if (result && !alive_) return CheckAlive("IrqFdRoute::Release");
  return result;
}

std::optional<MsiMessage> WhpTriggerIrqFdCore::CurrentMsi(Gsi gsi) {
  std::lock_guard lock(mu_);
  if (!alive_) return std::nullopt;
  return slots_[gsi].msi;
}

void WhpTriggerIrqFdCore::BeginBatch() {
  std::lock_guard lock(mu_);
  ++batch_depth_;
}

Status WhpTriggerIrqFdCore::EndBatch() {
  std::lock_guard lock(mu_);
  if (batch_depth_ == 0) {
    return Error::Make(ErrorCode::kFailedPrecondition, "IrqFd::EndBatch", "no batch is open");
  }
  if (--batch_depth_ > 0) return Ok();
  // Nothing to push: every change inside the batch took effect when it was made.
  return CheckAlive("IrqFd::EndBatch");
}

void WhpTriggerIrqFdCore::Shutdown() {
  std::lock_guard lock(mu_);
  if (!alive_) return;
  alive_ = false;
  for (Slot& slot : slots_) {
    // ClearSink waits for a SetEvent in progress: after this loop none runs or will run.
    if (slot.event != nullptr) slot.event->ClearSink();
    slot.event = nullptr;
    slot.msi.reset();
    slot.trigger = nullptr;  // WHvDeletePartition deletes it; the event handle stays ours
  }
}

void WhpTriggerIrqFdCore::SetErrorHandler(IrqFd::ErrorHandler handler) {
  std::lock_guard lock(handler_mu_);
  on_error_ = std::move(handler);
}

void WhpTriggerIrqFdCore::Report(const Error& error) {
  std::lock_guard lock(handler_mu_);
  if (on_error_) {
    on_error_(error);
  } else {
    std::fprintf(stderr, "virt: %s\n", error.Message().c_str());
  }
}

uint32_t WhpTriggerIrqFdCore::allocated_gsis() {
  std::lock_guard lock(mu_);
  return gsis_.allocated();
}

}  // namespace virt::whp
