// RouteBatch: RAII scope that coalesces route changes into one table push.
#include <string>
#include <utility>

#include "virt/irqfd.h"

namespace virt {

RouteBatch::~RouteBatch() {
  if (irqfd_ == nullptr) return;
  if (Status committed = irqfd_->EndBatch(); !committed) irqfd_->ReportError(committed.error());
}

Status RouteBatch::Commit() {
  if (irqfd_ == nullptr) return Ok();
  return std::exchange(irqfd_, nullptr)->EndBatch();
}

Result<std::vector<std::unique_ptr<IrqFdRoute>>> RestoreRoutes(
    IrqFd& irqfd, std::span<const RouteState> routes) {
  std::vector<std::unique_ptr<IrqFdRoute>> out;
  out.reserve(routes.size());
  RouteBatch batch(irqfd);
  for (const RouteState& r : routes) {
    auto route = irqfd.NewRouteAt(r.gsi);
    Status s = route ? Ok() : Status(route.error());
    if (s && r.msi) s = (*route)->SetMsi(*r.msi);
    if (!s) {
      Error e = s.error();
      e.detail = "restoring the route on GSI " + std::to_string(r.gsi) +
                 (e.detail.empty() ? "" : ": " + e.detail);
      return e;  // `out` and the batch unwind: the routes made so far are dropped again
    }
    out.push_back(std::move(*route));
  }
  if (Status s = batch.Commit(); !s) return s.error();
  return out;
}

}  // namespace virt
