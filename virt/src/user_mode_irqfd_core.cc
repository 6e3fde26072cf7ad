// UserModeIrqFdCore: masking by watching/unwatching route events, dispatch, teardown, shutdown.
#include "user_mode_irqfd_core.h"

#include <cstdio>
#include <string>
#include <thread>
#include <utility>

namespace virt {
namespace {

// The core whose dispatcher this thread runs, if any.
thread_local const UserModeIrqFdCore* tls_dispatching_core = nullptr;

}  // namespace

void UserModeIrqFdCore::PublishedMsi::Store(const std::optional<MsiMessage>& msi) {
  const uint32_t seq = seq_.load(std::memory_order_relaxed);  // writers hold mu_: no other
  seq_.store(seq + 1, std::memory_order_relaxed);
  address_.store(msi ? msi->address : 0, std::memory_order_release);
  data_.store(msi ? msi->data : 0, std::memory_order_release);
  present_.store(msi.has_value(), std::memory_order_release);
  seq_.store(seq + 2, std::memory_order_release);
}

[[gnu::cold, gnu::noinline]] void UserModeIrqFdCore::PublishedMsi::WaitForStore() {
  std::this_thread::yield();
}

UserModeIrqFdCore::UserModeIrqFdCore(Poller poller, GsiTable gsis,
                                     UserModeIrqFd::Injector injector, bool direct_signals)
    : poller_(std::move(poller)),
      gsis_(std::move(gsis)),
      slots_(gsis_.capacity()),
      inject_(std::move(injector)),
      direct_(direct_signals) {}

Status UserModeIrqFdCore::CheckAlive(const char* op) const {
  if (alive_) return Ok();
  return Error::Make(ErrorCode::kPartitionGone, op, "the user-mode irqfd has been shut down");
}

Result<Gsi> UserModeIrqFdCore::AllocateGsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::NewRoute"); !s) return s.error();
  return gsis_.Allocate();
}

Result<Gsi> UserModeIrqFdCore::AllocateGsiAt(Gsi gsi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::NewRouteAt"); !s) return s.error();
  return gsis_.AllocateAt(gsi);
}

Result<std::vector<RouteState>> UserModeIrqFdCore::Routes() {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::Routes"); !s) return s.error();
  std::vector<RouteState> out;
  for (Gsi gsi = 0; gsi < gsis_.capacity(); ++gsi) {
    if (gsis_.IsAllocated(gsi)) out.push_back({gsi, slots_[gsi].msi.Load()});
  }
  return out;
}

Status UserModeIrqFdCore::SetMsi(Gsi gsi, const Event& event, const MsiMessage& msi) {
  if (!msi.IsValid()) [[unlikely]] return msi.Decode().error();  // the error names the fault
  Status sink = Ok();
  bool retarget = false;
  {
    std::lock_guard lock(mu_);
    if (Status s = CheckAlive("IrqFdRoute::SetMsi"); !s) return s;
    Slot& slot = slots_[gsi];
    slot.msi.Store(msi);  // a retarget: the next dispatch injects the new MSI
    retarget = slot.watch != 0;
    if (retarget && direct_ && slot.sink_event == nullptr) {
      sink = SetSinkLocked(slot, gsi, event);  // setting it failed before: try again
    }
  }
  if (retarget) {
    if (!sink) Report(sink.error());  // the route is enabled all the same (see SetSinkLocked)
    return Ok();
  }
  // Unmask. The MSI is set first so that a count already pending, reported as soon as the watch
  // exists, is delivered with it.
  auto watch = poller_.Add(event, [this, gsi, &event] { Dispatch(gsi, event); });
  std::unique_lock lock(mu_);
  Slot& slot = slots_[gsi];
  if (!watch) {
    slot.msi.Store(std::nullopt);  // back to masked, as it was
    return watch.error();
  }
  if (!alive_) {
    // Shutdown ran meanwhile and did not see this watch: undo it ourselves.
    lock.unlock();
    (void)poller_.Remove(*watch);
    return CheckAlive("IrqFdRoute::SetMsi");
  }
  slot.watch = *watch;
  if (direct_) sink = SetSinkLocked(slot, gsi, event);  // after the watch: see SetSinkLocked
  lock.unlock();
  if (!sink) Report(sink.error());  // the route is enabled all the same
  return Ok();
}

Status UserModeIrqFdCore::SetSinkLocked(Slot& slot, Gsi gsi, const Event& event) {
  // A count already pending goes to the dispatcher or, drained here, to the sink (injected now,
  // under mu_: the injector must not call back into the IrqFd). If that injection fails, the
  // caller reports the error (after unlocking), the count is back on the event for the
  // dispatcher, and the route stays enabled without a sink: its signals take the dispatcher
  // until a later SetMsi sets one.
  Status set = event.SetSink([this, gsi](uint64_t) { return DirectInject(gsi); });
  if (set) slot.sink_event = &event;
  return set;
}

void UserModeIrqFdCore::ClearSinkLocked(Slot& slot) {
  // Once ClearSink returns no sink of this route runs, and signals go to the event's counter.
  if (const Event* event = std::exchange(slot.sink_event, nullptr)) event->ClearSink();
}

Status UserModeIrqFdCore::DirectInject(Gsi gsi) {
  // Set only while the route is enabled, and taken away before its MSI is cleared: present.
  const std::optional<MsiMessage> msi = CurrentMsi(gsi);
  if (!msi) [[unlikely]] return Ok();
  auto injected = inject_(*msi);
  if (!injected) [[unlikely]] return injected.error();
  injected_direct_.fetch_add(1, std::memory_order_relaxed);
  return Ok();
}

Status UserModeIrqFdCore::ClearMsi(Gsi gsi) {
  Poller::WatchId watch = 0;
  {
    std::lock_guard lock(mu_);
    if (Status s = CheckAlive("IrqFdRoute::ClearMsi"); !s) return s;
    Slot& slot = slots_[gsi];
    ClearSinkLocked(slot);  // first: signals from now on reach the counter and stay pending
    slot.msi.Store(std::nullopt);  // a dispatch that starts now leaves the count pending
    watch = std::exchange(slot.watch, 0);
  }
  if (watch == 0) return Ok();  // already masked
  // Once Remove returns no dispatch of this route runs, so later signals stay on the event.
  // The route is masked even when the detach fails.
  return poller_.Remove(watch);
}

Status UserModeIrqFdCore::Drop(Gsi gsi) {
  Poller::WatchId watch = 0;
  {
    std::lock_guard lock(mu_);
    if (!alive_) return Ok();  // Shutdown removed every watch and sink already
    Slot& slot = slots_[gsi];
    ClearSinkLocked(slot);
    slot.msi.Store(std::nullopt);
    watch = std::exchange(slot.watch, 0);
  }
  // Stop watching before the GSI can be reused and before the route closes its event (a
  // registration left on a dup'd eventfd or duplicated handle would keep firing).
  Status result = watch != 0 ? poller_.Remove(watch) : Ok();
  std::lock_guard lock(mu_);
  if (Status freed = gsis_.Free(gsi); !freed && result) result = freed;
  return result;
}

void UserModeIrqFdCore::BeginBatch() {
  std::lock_guard lock(mu_);
  ++batch_depth_;
}

Status UserModeIrqFdCore::EndBatch() {
  std::lock_guard lock(mu_);
  if (batch_depth_ == 0) {
    return Error::Make(ErrorCode::kFailedPrecondition, "IrqFd::EndBatch", "no batch is open");
  }
  if (--batch_depth_ > 0) return Ok();
  // Nothing to push: every change inside the batch took effect when it was made.
  return CheckAlive("IrqFd::EndBatch");
}

void UserModeIrqFdCore::Dispatch(Gsi gsi, const Event& event) {
  // Masking in progress (ClearMsi/Drop is about to remove this watch): leave the count pending.
  const std::optional<MsiMessage> before = CurrentMsi(gsi);
  if (!before) return;
  auto drained = event.TryWait();
  if (!drained) {
    Report(drained.error());
    return;
  }
  if (*drained == 0) return;  // another reader drained it first
  // The MSI is read again after draining: a signal made after a retarget returned may be in
  // this count, and must arrive with the new MSI. If masking began meanwhile, the count was
  // signalled before ClearMsi/Drop returned, so it goes out with the MSI it had (read before).
  const std::optional<MsiMessage> now = CurrentMsi(gsi);
  auto injected = inject_(now ? *now : *before);
  if (!injected) {
    Report(injected.error());
    return;
  }
  // Only the dispatcher thread counts (others only read): a store, not a locked increment.
  injected_.store(injected_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

bool UserModeIrqFdCore::OnDispatcherThread() const { return tls_dispatching_core == this; }

void UserModeIrqFdCore::RunDispatcher() {
  tls_dispatching_core = this;
  while (!stop_.load(std::memory_order_acquire)) {
    auto ran = poller_.Wait(std::chrono::milliseconds(-1));
    if (!ran) {
      // Waiting itself failed (epoll_wait, GetQueuedCompletionStatusEx): the poller is
      // unusable, retrying would only spin.
      Report(ran.error());
      return;
    }
  }
}

void UserModeIrqFdCore::StopDispatcher() {
  stop_.store(true, std::memory_order_release);
  if (Status woke = poller_.Wake(); !woke) Report(woke.error());
}

void UserModeIrqFdCore::Shutdown() {
  std::vector<Poller::WatchId> watches;
  {
    std::lock_guard lock(mu_);
    if (!alive_) return;
    alive_ = false;
    for (Slot& slot : slots_) {
      ClearSinkLocked(slot);  // before the injector goes (below)
      slot.msi.Store(std::nullopt);
      if (slot.watch != 0) watches.push_back(std::exchange(slot.watch, 0));
    }
  }
  for (Poller::WatchId watch : watches) {
    if (Status s = poller_.Remove(watch); !s) Report(s.error());
  }
  inject_ = nullptr;  // may hold the partition; the dispatcher that used it has been joined
}

void UserModeIrqFdCore::SetErrorHandler(IrqFd::ErrorHandler handler) {
  std::lock_guard lock(handler_mu_);
  on_error_ = std::move(handler);
}

void UserModeIrqFdCore::Report(const Error& error) {
  std::lock_guard lock(handler_mu_);
  if (on_error_) {
    on_error_(error);
  } else {
    std::fprintf(stderr, "virt: %s\n", error.Message().c_str());
  }
}

}  // namespace virt
