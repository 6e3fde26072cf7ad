// RouteBatch: RAII scope that coalesces route changes into one table push.
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

}  // namespace virt
