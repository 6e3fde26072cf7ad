// UserModeIrqFd: creation, the dispatcher thread's lifetime, routes, and MakeUserModeIrqFd.
#include "virt/user_mode_irqfd.h"

#include <string>
#include <system_error>
#include <utility>

#include "user_mode_irqfd_core.h"
#include "user_mode_irqfd_route.h"

namespace virt {

Result<std::unique_ptr<UserModeIrqFd>> UserModeIrqFd::Create(Injector injector,
                                                             uint32_t gsi_capacity) {
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
                                                  std::move(injector));
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

Result<std::unique_ptr<IrqFdRoute>> UserModeIrqFd::NewRoute() {
  auto event = Event::Create();
  if (!event) return event.error();
  auto gsi = core_->AllocateGsi();
  if (!gsi) return gsi.error();
  return std::unique_ptr<IrqFdRoute>(new UserModeIrqFdRoute(core_, *gsi, std::move(*event)));
}

void UserModeIrqFd::BeginBatch() { core_->BeginBatch(); }

Status UserModeIrqFd::EndBatch() { return core_->EndBatch(); }

void UserModeIrqFd::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}

void UserModeIrqFd::ReportError(const Error& error) { core_->Report(error); }

uint64_t UserModeIrqFd::injected_count() const { return core_->injected_count(); }

Result<std::unique_ptr<UserModeIrqFd>> MakeUserModeIrqFd(Partition& partition) {
  return UserModeIrqFd::Create(
      [&partition](const MsiMessage& msi) { return partition.RequestMsi(msi); });
}

}  // namespace virt
