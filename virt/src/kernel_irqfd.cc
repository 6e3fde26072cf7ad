// KernelIrqFd and KernelIrqFdRoute: thin IrqFd/IrqFdRoute faces over the shared core.
#include "virt/kernel_irqfd.h"

#include <memory>
#include <string>
#include <utility>

#include "kernel_irqfd_core.h"
#include "virt/kernel_irqfd_route.h"

namespace virt {

static_assert(sizeof(KernelIrqFdRoute) <= 64, "a route fits in one cache line (see its members)");

std::unique_ptr<KernelIrqFd> KernelIrqFd::Create(std::unique_ptr<IrqFdKernelOps> ops,
                                                 GsiTable gsis, Options options) {
  auto core = std::make_shared<KernelIrqFdCore>(std::move(ops), std::move(gsis), options);
  return std::unique_ptr<KernelIrqFd>(new KernelIrqFd(std::move(core)));
}

KernelIrqFd::KernelIrqFd(std::shared_ptr<KernelIrqFdCore> core) : core_(std::move(core)) {}

KernelIrqFd::~KernelIrqFd() = default;

Result<std::unique_ptr<IrqFdRoute>> KernelIrqFd::NewRoute() {
  return core_->NewRoute(core_, nullptr);
}

Result<std::unique_ptr<IrqFdRoute>> KernelIrqFd::NewRouteAt(Gsi gsi) {
  return core_->NewRoute(core_, &gsi);
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

KernelIrqFdRoute::KernelIrqFdRoute(const std::shared_ptr<KernelIrqFdCore>& core, Gsi gsi,
                                   uint64_t owner, Event&& event)
    : core_(core), gsi_(gsi), owner_(owner), event_(std::move(event)) {}

KernelIrqFdRoute::~KernelIrqFdRoute() {
  if (!released_.exchange(true, std::memory_order_relaxed)) {
    Status s = core_->Drop(gsi_, owner_, event_.native_handle());
    // After the partition is gone destruction just closes the event: nothing to report.
    if (!s && s.error().code != ErrorCode::kPartitionGone) core_->Report(s.error());
  }
  delete resample_.load(std::memory_order_acquire);
}

void KernelIrqFdRoute::operator delete(KernelIrqFdRoute* route, std::destroying_delete_t) {
  // The destructor drops core_; this reference keeps the memory's owner alive past it.
  std::shared_ptr<KernelIrqFdCore> core = route->core_;
  route->~KernelIrqFdRoute();
  core->FreeRouteMemory(route);
}

Result<int> KernelIrqFdRoute::ResampleFd() {
  Event* resample = resample_.load(std::memory_order_acquire);
  if (resample == nullptr) {
    auto created = Event::Create();
    if (!created) return created.error();
    auto mine = std::make_unique<Event>(std::move(*created));
    if (resample_.compare_exchange_strong(resample, mine.get(), std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
      resample = mine.release();
    }  // else another SetMsi published one first: `resample` is that one, ours closes
  }
  return resample->native_handle();
}

Status KernelIrqFdRoute::SetMsi(const MsiMessage& msi) {
  if (released_.load(std::memory_order_relaxed)) [[unlikely]] {
    return KernelIrqFdCore::ReleasedError("IrqFdRoute::SetMsi", gsi_);
  }
  int resample_fd = -1;
  // A level-triggered MSI needs the resample event first (an invalid MSI creates nothing: the
  // core rejects it).
  if (core_->options().resample && msi.level_triggered() && msi.IsValid()) {
    auto fd = ResampleFd();
    if (!fd) return fd.error();
    resample_fd = *fd;
  }
  return core_->SetMsi(gsi_, owner_, event_.native_handle(), resample_fd, msi);
}

Status KernelIrqFdRoute::ClearMsi() {
  if (released_.load(std::memory_order_relaxed)) {
    return KernelIrqFdCore::ReleasedError("IrqFdRoute::ClearMsi", gsi_);
  }
  return core_->ClearMsi(gsi_, owner_, event_.native_handle());
}

std::optional<MsiMessage> KernelIrqFdRoute::msi() const {
  if (released_.load(std::memory_order_relaxed)) return std::nullopt;
  return core_->CurrentMsi(gsi_, owner_);
}

Status KernelIrqFdRoute::Release() {
  if (released_.exchange(true, std::memory_order_relaxed)) {
    return KernelIrqFdCore::ReleasedError("IrqFdRoute::Release", gsi_);
  }
  return core_->Drop(gsi_, owner_, event_.native_handle());
}

const Event* KernelIrqFdRoute::resample_event() const {
  return resample_.load(std::memory_order_acquire);
}

}  // namespace virt
