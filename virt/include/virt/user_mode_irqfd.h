// UserModeIrqFd: the IrqFd contract for any partition that can RequestMsi, via a dispatcher thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "virt/irqfd.h"
#include "virt/msi_message.h"
#include "virt/partition.h"
#include "virt/result.h"

namespace virt {

class UserModeIrqFdCore;

// An IrqFd that needs no hypervisor support: each route owns an Event; one dispatcher thread
// waits on the events of unmasked routes with a Poller and, when one is signalled, drains it and
// injects the route's current MSI through the injector (Partition::RequestMsi). Several signals
// before a dispatch coalesce into one MSI, as with a kernel irqfd.
//
// Route semantics are those of IrqFdRoute:
//  - a new route is masked and its event is not watched;
//  - SetMsi validates the MSI, then enables (watches the event: a count that is already pending
//    is delivered right away, with the new MSI) or retargets (the next dispatch uses it);
//  - ClearMsi stops watching the event before it returns, so signals from then on stay pending
//    on the event until the next SetMsi and none is delivered before it;
//  - Release/destruction stop watching before returning (waiting for a dispatch of this very
//    route that is under way) and free the GSI; after that nothing is injected for the route,
//    even if a device signals a dup of its event (a dup'd eventfd, a duplicated HANDLE).
// Batches: there is no table to push, so BeginBatch/EndBatch only nest (EndBatch without a
// batch fails with kFailedPrecondition) and push_count() stays 0. Changes inside a batch take
// effect at once, which is no later than EndBatch as the IrqFd contract asks.
// GSIs come from a GsiTable with 0-23 reserved (as on KVM), so they are meaningful and run out
// with kExhausted like the kernel ones.
//
// Direct signals (Options::direct_signals, on in MakeUserModeIrqFd): Event::Signal on an
// enabled route's event injects right there, on the signalling thread, instead of waking the
// dispatcher (a thread wake-up, which costs more than the injection itself on many hosts). Each
// route's event is then made by Event::CreateWithSink and the route's injection is its sink
// while the route is enabled: Signal returns the injector's failure (a guest that blocked the
// MSI is not one), signals of one route are serialised on its event's lock, and several
// signals no longer coalesce. Masking, Release, destruction and Shutdown take the sink away
// before they return, so the masking rules above hold unchanged; a count pending at SetMsi is
// delivered by the dispatcher or by SetMsi itself (whose injection failure goes to the error
// handler: the route is enabled, its signals taking the dispatcher until a later SetMsi).
// Writes made straight to native_handle() (a device in another process, a dup of the eventfd)
// still go through the dispatcher.
//
// Lifetime: the owner must call Shutdown() (or destroy this object) before the partition the
// injector reaches goes away. From then on routes fail with kPartitionGone and the injector is
// never called again. Routes may outlive this object.
class UserModeIrqFd final : public IrqFd {
 public:
  // Injects one MSI; true when the guest took it. Called on the dispatcher thread, and with
  // direct signals also on any thread signalling a route's event, concurrently: it must then be
  // thread-safe, and must not call into this IrqFd or its routes.
  using Injector = std::function<Result<bool>(const MsiMessage&)>;

  static constexpr uint32_t kDefaultGsiCapacity = 2048;
  static constexpr uint32_t kReservedGsis = 24;  // 0-23, the IOAPIC pins on x86

  struct Options {
    uint32_t gsi_capacity = kDefaultGsiCapacity;  // > kReservedGsis
    bool direct_signals = false;  // see the class comment; needs a thread-safe injector
  };

  // Creates the poller and GSI table (capacity > kReservedGsis) and starts the dispatcher.
  // kInvalidArgument for an empty injector or too small a capacity; kNative when the poller
  // (epoll instance and wake eventfd; I/O completion port on Windows) or the thread cannot be
  // created.
  static Result<std::unique_ptr<UserModeIrqFd>> Create(Injector injector, Options options);
  // Create with `gsi_capacity` and without direct signals.
  static Result<std::unique_ptr<UserModeIrqFd>> Create(
      Injector injector, uint32_t gsi_capacity = kDefaultGsiCapacity);

  UserModeIrqFd(const UserModeIrqFd&) = delete;
  UserModeIrqFd& operator=(const UserModeIrqFd&) = delete;
  // Shutdown(), reporting a failure to the error handler. Must not run on the dispatcher thread.
  ~UserModeIrqFd() override;

  Result<std::unique_ptr<IrqFdRoute>> NewRoute() override;
  // As KernelIrqFd's: a chosen GSI, and the live routes with their MSIs.
  Result<std::unique_ptr<IrqFdRoute>> NewRouteAt(Gsi gsi) override;
  Result<std::vector<RouteState>> Routes() const override;
  void BeginBatch() override;
  Status EndBatch() override;
  // Also receives dispatcher failures (RequestMsi or draining an event failing); the handler
  // may then run on the dispatcher thread, and must not call Shutdown() there.
  void SetErrorHandler(ErrorHandler handler) override;
  void ReportError(const Error& error) override;
  uint64_t push_count() const override { return 0; }

  // Stops and joins the dispatcher, stops watching every route's event and drops the injector:
  // when it returns, the injector is not running and never runs again, and every route call
  // fails with kPartitionGone. Idempotent and thread-safe. kFailedPrecondition when called on
  // the dispatcher thread (from the error handler), which cannot join itself.
  Status Shutdown();

  // Number of MSIs injected so far (for tests and benchmarks).
  uint64_t injected_count() const;

 private:
  explicit UserModeIrqFd(std::shared_ptr<UserModeIrqFdCore> core);

  std::shared_ptr<UserModeIrqFdCore> core_;
  std::mutex shutdown_mu_;  // serialises Shutdown callers
  std::thread dispatcher_;  // joinable until Shutdown; guarded by shutdown_mu_
};

// A user-mode irqfd injecting through `partition.RequestMsi` (thread-safe, as a Partition is),
// by default with direct signals, for partitions whose irqfd() is null or to compare against
// the kernel one. Call Shutdown() (or destroy the result) before destroying `partition`.
Result<std::unique_ptr<UserModeIrqFd>> MakeUserModeIrqFd(
    Partition& partition, UserModeIrqFd::Options options = {.direct_signals = true});

}  // namespace virt
