// KvmIrqFdOps: the KVM ioctls behind KernelIrqFd, and the KVM partition's GSI layout.
#include "kvm_irqfd.h"

#include <string>
#include <utility>

namespace virt::kvm {
namespace {

// KVM_IRQFD's assign arguments.
kvm_irqfd AssignArgs(Gsi gsi, int event_fd) {
  kvm_irqfd a{};
  a.fd = static_cast<uint32_t>(event_fd);
  a.gsi = gsi;
  return a;
}

}  // namespace

Status KvmIrqFdOps::PushTable(std::span<const RoutingEntry> entries) {
  return ioctl_->SetGsiRouting(vm_fd_, buffer_.Build(entries));
}

Status KvmIrqFdOps::Assign(Gsi gsi, int event_fd, int /*resample_fd*/) {
  return ioctl_->Irqfd(vm_fd_, AssignArgs(gsi, event_fd));
}

Status KvmIrqFdOps::AssignEach(std::span<const Registration> registrations,
                               std::vector<uint32_t>& failed) {
  return AssignEachWith(registrations, failed, [this](const Registration& r) {
    return ioctl_->Irqfd(vm_fd_, AssignArgs(r.gsi, r.event_fd));
  });
}

Status KvmIrqFdOps::Deassign(Gsi gsi, int event_fd) {
  kvm_irqfd d{};
  d.fd = static_cast<uint32_t>(event_fd);
  d.gsi = gsi;
  d.flags = KVM_IRQFD_FLAG_DEASSIGN;
  return ioctl_->Irqfd(vm_fd_, d);
}

Result<std::unique_ptr<KernelIrqFd>> CreateKvmIrqFd(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                    int max_routes) {
  const int capacity = max_routes - 16;
  if (capacity <= static_cast<int>(KvmRoutingBuffer::kIrqchipGsis)) {
    return Error::Make(ErrorCode::kUnavailable, "KvmIrqFd::Create",
                       "KVM allows only " + std::to_string(max_routes) + " routes");
  }
  auto gsis = GsiTable::Create(static_cast<uint32_t>(capacity));
  if (!gsis) return gsis.error();
  if (Status s = gsis->Reserve(0, KvmRoutingBuffer::kIrqchipGsis); !s) return s.error();
  return KernelIrqFd::Create(std::make_unique<KvmIrqFdOps>(std::move(ioctl), vm_fd,
                                                         static_cast<uint32_t>(capacity)),
                             std::move(*gsis),
                             {.resample = false});
}

}  // namespace virt::kvm
