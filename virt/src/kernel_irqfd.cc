// KernelIrqFd and KernelIrqFdRoute: thin IrqFd/IrqFdRoute faces over the shared core.
#include "virt/kernel_irqfd.h"

#include <string>
#include <utility>

#include "kernel_irqfd_core.h"
#include "virt/kernel_irqfd_route.h"

namespace virt {

std::unique_ptr<KernelIrqFd> KernelIrqFd::Create(std::unique_ptr<IrqFdKernelOps> ops,
                                                 GsiTable gsis, Options options) {
  auto core = std::make_shared<KernelIrqFdCore>(std::move(ops), std::move(gsis), options);
  return std::unique_ptr<KernelIrqFd>(new KernelIrqFd(std::move(core)));
}

KernelIrqFd::KernelIrqFd(std::shared_ptr<KernelIrqFdCore> core) : core_(std::move(core)) {}

KernelIrqFd::~KernelIrqFd() = default;

Result<std::unique_ptr<IrqFdRoute>> KernelIrqFd::NewRoute() {
  auto event = Event::Create();
  if (!event) return event.error();
  auto gsi = core_->AllocateGsi();
  if (!gsi) return gsi.error();
  return std::unique_ptr<IrqFdRoute>(new KernelIrqFdRoute(core_, *gsi, std::move(*event)));
}

Result<std::unique_ptr<IrqFdRoute>> KernelIrqFd::NewRouteAt(Gsi gsi) {
  auto event = Event::Create();
  if (!event) return event.error();
  auto got = core_->AllocateGsiAt(gsi);
  if (!got) return got.error();
  return std::unique_ptr<IrqFdRoute>(new KernelIrqFdRoute(core_, *got, std::move(*event)));
}

Result<std::vector<RouteState>> KernelIrqFd::Routes() const { return core_->Routes(); }

void KernelIrqFd::BeginBatch() { core_->BeginBatch(); }
Status KernelIrqFd::EndBatch() { return core_->EndBatch(); }
void KernelIrqFd::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}
void KernelIrqFd::ReportError(const Error& error) { core_->Report(error); }
uint64_t KernelIrqFd::push_count() const { return core_->push_count(); }
uint32_t KernelIrqFd::allocated_gsis() const { return core_->allocated_gsis(); }
void KernelIrqFd::Shutdown() { core_->Shutdown(); }

KernelIrqFdRoute::KernelIrqFdRoute(std::shared_ptr<KernelIrqFdCore> core, Gsi gsi, Event event)
    : core_(std::move(core)), gsi_(gsi), event_(std::move(event)) {}

KernelIrqFdRoute::~KernelIrqFdRoute() {
  std::lock_guard lock(mu_);
  if (released_) return;
  released_ = true;
  Status s = core_->Drop(gsi_, event_.native_handle());
  // After the partition is gone destruction just closes the event: nothing to report.
  if (!s && s.error().code != ErrorCode::kPartitionGone) core_->Report(s.error());
}

Status KernelIrqFdRoute::CheckNotReleased(const char* op) const {
  if (!released_) return Ok();
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi_) + " was released");
}

Status KernelIrqFdRoute::SetMsi(const MsiMessage& msi) {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::SetMsi"); !s) return s;
  int resample_fd = -1;
  if (core_->options().resample) {
    auto decoded = msi.Decode();
    if (!decoded) return decoded.error();
    if (decoded->trigger_mode == TriggerMode::kLevel) {
      if (!resample_.valid()) {
        auto created = Event::Create();
        if (!created) return created.error();
        resample_ = std::move(*created);
      }
      resample_fd = resample_.native_handle();
    }
  }
  return core_->SetMsi(gsi_, event_.native_handle(), resample_fd, msi);
}

Status KernelIrqFdRoute::ClearMsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::ClearMsi"); !s) return s;
  return core_->ClearMsi(gsi_, event_.native_handle());
}

std::optional<MsiMessage> KernelIrqFdRoute::msi() const {
  std::lock_guard lock(mu_);
  if (released_) return std::nullopt;
  return core_->CurrentMsi(gsi_);
}

Status KernelIrqFdRoute::Release() {
  std::lock_guard lock(mu_);
  if (Status s = CheckNotReleased("IrqFdRoute::Release"); !s) return s;
  released_ = true;
  return core_->Drop(gsi_, event_.native_handle());
}

const Event* KernelIrqFdRoute::resample_event() const {
  std::lock_guard lock(mu_);
  return resample_.valid() ? &resample_ : nullptr;
}

}  // namespace virt
