// KvmIrqFdCore: route arming/teardown ordering, batching and rollback over KVM_IRQFD.
#include "kvm_irqfd.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "kvm_irqfd_route.h"

namespace virt::kvm {

KvmIrqFdCore::KvmIrqFdCore(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, GsiTable gsis)
    : ioctl_(std::move(ioctl)),
      vm_fd_(vm_fd),
      gsis_(std::move(gsis)),
      buffer_(/*irqchip_defaults=*/true),
      table_(gsis_.capacity(),
             [this](std::span<const RoutingEntry> entries) {
               return ioctl_->SetGsiRouting(vm_fd_, buffer_.Build(entries));
             }),
      slots_(gsis_.capacity()) {}

Status KvmIrqFdCore::CheckAlive(const char* op) const {
  if (alive_) return Ok();
  return Error::Make(ErrorCode::kPartitionGone, op, "the partition has been destroyed");
}

Result<Gsi> KvmIrqFdCore::AllocateGsi() {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::NewRoute"); !s) return s.error();
  return gsis_.Allocate();
}

Status KvmIrqFdCore::Assign(Gsi gsi, int event_fd) {
  kvm_irqfd a{};
  a.fd = static_cast<uint32_t>(event_fd);
  a.gsi = gsi;
  return ioctl_->Irqfd(vm_fd_, a);
}

Status KvmIrqFdCore::Deassign(Gsi gsi, int event_fd) {
  kvm_irqfd d{};
  d.fd = static_cast<uint32_t>(event_fd);
  d.gsi = gsi;
  d.flags = KVM_IRQFD_FLAG_DEASSIGN;
  return ioctl_->Irqfd(vm_fd_, d);
}

Status KvmIrqFdCore::Push() {
  for (Gsi gsi : free_after_push_) table_.Remove(gsi);
  Status pushed = table_.Flush();
  if (!pushed) return pushed;  // the table rolled back; GSIs stay parked for the next push
  for (Gsi gsi : free_after_push_) (void)gsis_.Free(gsi);
  free_after_push_.clear();
  return Ok();
}

Status KvmIrqFdCore::SetMsi(Gsi gsi, int event_fd, const MsiMessage& msi) {
  if (auto decoded = msi.Decode(); !decoded) return decoded.error();
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFdRoute::SetMsi"); !s) return s;
  Slot& slot = slots_[gsi];
  const std::optional<MsiMessage> previous = table_.Get(gsi);
  if (Status s = table_.Set(gsi, msi); !s) return s;
  slot.event_fd = event_fd;

  if (batch_depth_ > 0) {
    if (!slot.armed && !slot.arm_pending) {
      slot.arm_pending = true;
      arm_pending_.push_back(gsi);
    }
    return Ok();
  }
  if (Status s = Push(); !s) return s;  // rolled back: the route is as it was
  if (slot.armed) return Ok();          // a retarget: the push was all it took
  if (Status s = Assign(gsi, event_fd); !s) {
    // Undo the entry so the table again matches a route that was never enabled.
    if (previous) {
      (void)table_.Set(gsi, *previous);
    } else {
      table_.Remove(gsi);
    }
    if (Status undo = Push(); !undo) ReportLocked(undo.error());
    return s;
  }
  slot.armed = true;
  return Ok();
}

Status KvmIrqFdCore::ClearMsi(Gsi gsi, int event_fd) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFdRoute::ClearMsi"); !s) return s;
  Slot& slot = slots_[gsi];
  if (slot.armed) {
    // Disarm first: the entry must not leave the table while an irqfd still points at it. A
    // disarmed irqfd leaves later signals counted on the eventfd; the next assign sees them.
    if (Status s = Deassign(gsi, event_fd); !s) return s;
    slot.armed = false;
  }
  if (slot.arm_pending) {
    slot.arm_pending = false;
    std::erase(arm_pending_, gsi);
  }
  if (!table_.Remove(gsi) || batch_depth_ > 0) return Ok();
  // On failure the entry stays in the kernel table, but nothing is attached to it any more: the
  // route is masked either way and the caller learns the push failed.
  return Push();
}

Status KvmIrqFdCore::Drop(Gsi gsi, int event_fd) {
  std::lock_guard lock(mu_);
  // Closing the VM fd released everything already: nothing to undo, but Release() must still
  // fail like every other call on a route that outlived its partition.
  if (Status s = CheckAlive("IrqFdRoute::Release"); !s) return s;
  Slot& slot = slots_[gsi];
  Status result = Ok();
  if (slot.armed) {
    // If this fails the irqfd still goes away when the route closes its eventfd (KVM drops an
    // irqfd whose eventfd is released), so carry on and report.
    if (Status s = Deassign(gsi, event_fd); !s) result = s;
    slot.armed = false;
  }
  if (slot.arm_pending) {
    slot.arm_pending = false;
    std::erase(arm_pending_, gsi);
  }
  slot.event_fd = -1;
  if (!table_.Get(gsi) && !table_.Committed(gsi)) {
    (void)gsis_.Free(gsi);
    return result;
  }
  // The GSI may be reused only once a table without its entry is in the kernel.
  free_after_push_.push_back(gsi);
  if (batch_depth_ > 0) return result;
  if (Status s = Push(); !s && result) result = s;
  return result;
}

std::optional<MsiMessage> KvmIrqFdCore::CurrentMsi(Gsi gsi) {
  std::lock_guard lock(mu_);
  if (!alive_) return std::nullopt;
  // Only an armed route (or one a batch will arm) delivers its entry. A ClearMsi whose push
  // failed leaves the entry in the table, but the route is masked all the same.
  const Slot& slot = slots_[gsi];
  if (!slot.armed && !slot.arm_pending) return std::nullopt;
  return table_.Get(gsi);
}

void KvmIrqFdCore::BeginBatch() {
  std::lock_guard lock(mu_);
  ++batch_depth_;
}

Status KvmIrqFdCore::EndBatch() {
  std::lock_guard lock(mu_);
  if (batch_depth_ == 0) {
    return Error::Make(ErrorCode::kFailedPrecondition, "IrqFd::EndBatch", "no batch is open");
  }
  if (--batch_depth_ > 0) return Ok();
  if (Status s = CheckAlive("IrqFd::EndBatch"); !s) return s;

  std::vector<Gsi> to_arm = std::move(arm_pending_);
  arm_pending_.clear();
  for (Gsi gsi : to_arm) slots_[gsi].arm_pending = false;

  if (Status s = Push(); !s) return s;  // routes enabled in the batch stay masked

  Status result = Ok();
  bool undo = false;
  for (Gsi gsi : to_arm) {
    Slot& slot = slots_[gsi];
    if (Status s = Assign(gsi, slot.event_fd); !s) {
      if (result) result = s;
      table_.Remove(gsi);  // never leave an entry the route does not know it has
      undo = true;
      continue;
    }
    slot.armed = true;
  }
  if (undo) {
    if (Status s = Push(); !s) ReportLocked(s.error());
  }
  return result;
}

void KvmIrqFdCore::Shutdown() {
  std::lock_guard lock(mu_);
  alive_ = false;
}

void KvmIrqFdCore::SetErrorHandler(IrqFd::ErrorHandler handler) {
  std::lock_guard lock(mu_);
  on_error_ = std::move(handler);
}

void KvmIrqFdCore::Report(const Error& error) {
  std::lock_guard lock(mu_);
  ReportLocked(error);
}

void KvmIrqFdCore::ReportLocked(const Error& error) {
  if (on_error_) {
    on_error_(error);
  } else {
    std::fprintf(stderr, "virt: %s\n", error.Message().c_str());
  }
}

uint64_t KvmIrqFdCore::push_count() {
  std::lock_guard lock(mu_);
  return table_.push_count();
}

Result<std::unique_ptr<KvmIrqFd>> KvmIrqFd::Create(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                   int max_routes) {
  const int capacity = max_routes - 16;
  if (capacity <= static_cast<int>(KvmRoutingBuffer::kIrqchipGsis)) {
    return Error::Make(ErrorCode::kUnavailable, "KvmIrqFd::Create",
                       "KVM allows only " + std::to_string(max_routes) + " routes");
  }
  auto gsis = GsiTable::Create(static_cast<uint32_t>(capacity));
  if (!gsis) return gsis.error();
  if (Status s = gsis->Reserve(0, KvmRoutingBuffer::kIrqchipGsis); !s) return s.error();
  auto core = std::make_shared<KvmIrqFdCore>(std::move(ioctl), vm_fd, std::move(*gsis));
  return std::unique_ptr<KvmIrqFd>(new KvmIrqFd(std::move(core)));
}

Result<std::unique_ptr<IrqFdRoute>> KvmIrqFd::NewRoute() {
  auto event = Event::Create();
  if (!event) return event.error();
  auto gsi = core_->AllocateGsi();
  if (!gsi) return gsi.error();
  return std::unique_ptr<IrqFdRoute>(new KvmIrqFdRoute(core_, *gsi, std::move(*event)));
}

}  // namespace virt::kvm
