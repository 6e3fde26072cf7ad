// UserModeIrqFd and its routes: creation, the dispatcher thread's lifetime, MakeUserModeIrqFd.
#include "virt/user_mode_irqfd.h"

#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

#include "user_mode_irqfd_core.h"
#include "virt/irqfd_route.h"

namespace virt {
namespace {

// One route (GSI + owned Event); forwards to the shared core under its own lock.
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
  const Event event_;      // watched by the core's poller (and, with direct signals, its sink
                           // set) while the route is enabled
  mutable std::mutex mu_;  // serialises calls on this route, including against Release
  bool released_ = false;  // guarded by mu_
};

UserModeIrqFdRoute::UserModeIrqFdRoute(std::shared_ptr<UserModeIrqFdCore> core, Gsi gsi,
                                       Event event)
    : core_(std::move(core)), gsi_(gsi), event_(std::move(event)) {}

UserModeIrqFdRoute::~UserModeIrqFdRoute() {
  std::lock_guard lock(mu_);
  if (released_) return;
  released_ = true;
  if (Status s = core_->Drop(gsi_); !s) core_->Report(s.error());
}

Status UserModeIrqFdRoute::CheckNotReleased(const char* op) const {
  if (!released_) return Ok();
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi_) + " was released");
}

Status UserModeIrqFdRoute::SetMsi(const MsiMessage& msi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::SetMsi"); !s) return s;
  return core_->SetMsi(gsi_, event_, msi);
}

Status UserModeIrqFdRoute::ClearMsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::ClearMsi"); !s) return s;
  return core_->ClearMsi(gsi_);
}

std::optional<MsiMessage> UserModeIrqFdRoute::msi() const {
  std::lock_guard lock(mu_);
  if (released_) return std::nullopt;
  return core_->CurrentMsi(gsi_);
}

Status UserModeIrqFdRoute::Release() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::Release"); !s) return s;
  released_ = true;
  return core_->Drop(gsi_);
}

}  // namespace

Result<std::unique_ptr<UserModeIrqFd>> UserModeIrqFd::Create(Injector injector,
                                                             uint32_t gsi_capacity) {
  return Create(std::move(injector), Options{.gsi_capacity = gsi_capacity});
}

Result<std::unique_ptr<UserModeIrqFd>> UserModeIrqFd::Create(Injector injector, Options options) {
  const uint32_t gsi_capacity = options.gsi_capacity;
  if (!injector) {
    return Error::Make(ErrorCode::kInvalidArgument, "UserModeIrqFd::Create", "empty injector");
  }
  if (gsi_capacity <= kReservedGsis) {
    return Error::Make(ErrorCode::kInvalidArgument, "UserModeIrqFd::Create",
                       "GSI capacity " + std::to_string(gsi_capacity) + " leaves no GSI after " +
                           std::to_string(kReservedGsis) + " reserved ones");
  }
  auto gsis = GsiTable::Create(gsi_capacity);
  if (!gsis) return gsis.error();
  if (Status s = gsis->Reserve(0, kReservedGsis); !s) return s.error();
  auto poller = Poller::Create();
  if (!poller) return poller.error();
  auto core = std::make_shared<UserModeIrqFdCore>(std::move(*poller), std::move(*gsis),
                                                  std::move(injector), options.direct_signals);
  std::unique_ptr<UserModeIrqFd> irqfd(new UserModeIrqFd(core));
  try {
    irqfd->dispatcher_ = std::thread([core] { core->RunDispatcher(); });
  } catch (const std::system_error& e) {  // the one way std::thread reports failure
    return Error::Errno("std::thread", e.code().value(), "cannot start the dispatcher");
  }
  return irqfd;
}

UserModeIrqFd::UserModeIrqFd(std::shared_ptr<UserModeIrqFdCore> core) : core_(std::move(core)) {}

UserModeIrqFd::~UserModeIrqFd() {
  if (Status s = Shutdown(); !s) core_->Report(s.error());
}

Status UserModeIrqFd::Shutdown() {
  // Checked before taking the lock: a Shutdown on another thread may hold it while joining us.
  if (core_->OnDispatcherThread()) {
    return Error::Make(ErrorCode::kFailedPrecondition, "UserModeIrqFd::Shutdown",
                       "called on the dispatcher thread, which cannot join itself");
  }
  std::lock_guard lock(shutdown_mu_);
  if (dispatcher_.joinable()) {
    core_->StopDispatcher();
    dispatcher_.join();
  }
  core_->Shutdown();
  return Ok();
}

namespace {

// A route's event: sink-capable when signals inject directly.
Result<Event> NewRouteEvent(const UserModeIrqFdCore& core) {
  return core.direct_signals() ? Event::CreateWithSink() : Event::Create();
}

}  // namespace

Result<std::unique_ptr<IrqFdRoute>> UserModeIrqFd::NewRoute() {
  auto event = NewRouteEvent(*core_);
  if (!event) return event.error();
  auto gsi = core_->AllocateGsi();
  if (!gsi) return gsi.error();
  return std::unique_ptr<IrqFdRoute>(new UserModeIrqFdRoute(core_, *gsi, std::move(*event)));
}

Result<std::unique_ptr<IrqFdRoute>> UserModeIrqFd::NewRouteAt(Gsi gsi) {
  auto event = NewRouteEvent(*core_);
  if (!event) return event.error();
  auto got = core_->AllocateGsiAt(gsi);
  if (!got) return got.error();
  return std::unique_ptr<IrqFdRoute>(new UserModeIrqFdRoute(core_, *got, std::move(*event)));
}

Result<std::vector<RouteState>> UserModeIrqFd::Routes() const { return core_->Routes(); }

void UserModeIrqFd::BeginBatch() { core_->BeginBatch(); }

Status UserModeIrqFd::EndBatch() { return core_->EndBatch(); }

void UserModeIrqFd::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}

void UserModeIrqFd::ReportError(const Error& error) { core_->Report(error); }

uint64_t UserModeIrqFd::injected_count() const { return core_->injected_count(); }

Result<std::unique_ptr<UserModeIrqFd>> MakeUserModeIrqFd(Partition& partition,
                                                         UserModeIrqFd::Options options) {
  return UserModeIrqFd::Create(
      [&partition](const MsiMessage& msi) { return partition.RequestMsi(msi); }, options);
}

}  // namespace virt
