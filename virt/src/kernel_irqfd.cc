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
  // The core is made first: if making the face throws, nothing else holds a reference yet.
  auto core = std::make_unique<KernelIrqFdCore>(std::move(ops), std::move(gsis), options);
  auto irqfd = std::unique_ptr<KernelIrqFd>(new KernelIrqFd(core.get()));
  core.release();  // its reference is the KernelIrqFd's now
  return irqfd;
}

KernelIrqFd::KernelIrqFd(KernelIrqFdCore* core) : core_(core) {}

KernelIrqFd::~KernelIrqFd() { core_->DropReference(); }

// NewRoute and NewRouteAt are defined with the core's NewRoute (kernel_irqfd_core.cc), which
// they inline.

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

KernelIrqFdRoute::~KernelIrqFdRoute() {
  if (!released_.exchange(true, std::memory_order_relaxed)) {
    Status s = core_->Drop(gsi_, owner_, event_.native_handle());
    // After the partition is gone destruction just closes the event: nothing to report.
    if (!s && s.error().code != ErrorCode::kPartitionGone) core_->Report(s.error());
  }
  delete resample_.load(std::memory_order_acquire);
}

void KernelIrqFdRoute::operator delete(KernelIrqFdRoute* route, std::destroying_delete_t) {
  // The route's reference keeps the memory's owner alive until FreeRoute gives both back.
  KernelIrqFdCore* core = route->core_;
  route->~KernelIrqFdRoute();
  core->FreeRoute(route);
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
  if (msi.level_triggered() && core_->options().resample) [[unlikely]] return SetLevelMsi(msi);
  return core_->SetMsi(gsi_, owner_, event_.native_handle(), -1, msi);
}

// Out of line: the resample event's creation stays off the edge MSI's path.
[[gnu::noinline]] Status KernelIrqFdRoute::SetLevelMsi(const MsiMessage& msi) {
  int resample_fd = -1;
  // The resample event comes first (an invalid MSI creates nothing: the core rejects it).
  if (msi.IsValid()) {
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
