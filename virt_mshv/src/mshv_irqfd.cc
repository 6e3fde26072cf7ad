// MshvIrqFdOps: the MSHV ioctls behind KernelIrqFd, and the MSHV partition's GSI layout.
#include "mshv_irqfd.h"

#include <utility>

namespace virt::mshv {
namespace {

// MSHV_IRQFD's assign arguments: RESAMPLE when resample_fd >= 0.
mshv_user_irqfd AssignArgs(Gsi gsi, int event_fd, int resample_fd) {
  mshv_user_irqfd a{};
  a.fd = event_fd;
  a.resamplefd = resample_fd;
  a.gsi = gsi;
  a.flags = resample_fd >= 0 ? 1u << MSHV_IRQFD_BIT_RESAMPLE : 0u;
  return a;
}

}  // namespace

Status MshvIrqFdOps::PushTable(std::span<const RoutingEntry> entries) {
  return ioctl_->SetMsiRouting(partition_fd_, buffer_.Build(entries));
}

Status MshvIrqFdOps::Assign(Gsi gsi, int event_fd, int resample_fd) {
  return ioctl_->Irqfd(partition_fd_, AssignArgs(gsi, event_fd, resample_fd));
}

Status MshvIrqFdOps::AssignEach(std::span<const Registration> registrations,
                                std::vector<uint32_t>& failed) {
  return AssignEachWith(registrations, failed, [this](const Registration& r) {
    return ioctl_->Irqfd(partition_fd_, AssignArgs(r.gsi, r.event_fd, r.resample_fd));
  });
}

Status MshvIrqFdOps::Deassign(Gsi gsi, int event_fd) {
  mshv_user_irqfd d{};
  d.fd = event_fd;
  d.resamplefd = -1;
  d.gsi = gsi;
  d.flags = 1u << MSHV_IRQFD_BIT_DEASSIGN;
  return ioctl_->Irqfd(partition_fd_, d);
}

Result<std::unique_ptr<KernelIrqFd>> CreateMshvIrqFd(std::shared_ptr<MshvIoctl> ioctl,
                                                     int partition_fd) {
  auto gsis = GsiTable::Create(kMshvGsiCount);
  if (!gsis) return gsis.error();
  if (Status s = gsis->Reserve(0, kMshvReservedGsis); !s) return s.error();
  return KernelIrqFd::Create(std::make_unique<MshvIrqFdOps>(std::move(ioctl), partition_fd),
                             std::move(*gsis),
                             {.resample = true});
}

}  // namespace virt::mshv
