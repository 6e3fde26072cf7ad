// MshvIrqFdOps: MSHV_SET_MSI_ROUTING and MSHV_IRQFD under the shared KernelIrqFd.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "mshv_routing_buffer.h"
#include "virt/irqfd_kernel_ops.h"
#include "virt/kernel_irqfd.h"
#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

// The MSHV side of a KernelIrqFd: one ioctl per call, on the partition fd (which the partition
// keeps open until after KernelIrqFd::Shutdown). The kernel binds the interrupt when the irqfd
// is assigned (on arm64 for good), which is why KernelIrqFd's ordering rules matter here.
class MshvIrqFdOps final : public IrqFdKernelOps {
 public:
  MshvIrqFdOps(std::shared_ptr<MshvIoctl> ioctl, int partition_fd)
      : ioctl_(std::move(ioctl)), partition_fd_(partition_fd) {}

  // MSHV_SET_MSI_ROUTING with `entries` as an mshv_user_irq_table.
  Status PushTable(std::span<const RoutingEntry> entries) override;
  // MSHV_IRQFD {fd, resamplefd, gsi, RESAMPLE when resample_fd >= 0}.
  Status Assign(Gsi gsi, int event_fd, int resample_fd) override;
  // The same MSHV_IRQFD for each, from this loop.
  Status AssignEach(std::span<const Registration> registrations,
                    std::vector<uint32_t>& failed) override;
  // MSHV_IRQFD {fd, resamplefd -1, gsi, DEASSIGN}.
  Status Deassign(Gsi gsi, int event_fd) override;

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  int partition_fd_;
  MshvRoutingBuffer buffer_;
};

inline constexpr uint32_t kMshvGsiCount = 2048;    // routing table slots (as OpenVMM)
inline constexpr uint32_t kMshvReservedGsis = 24;  // 0-23: IOAPIC pins (as QEMU)

// The IrqFd of an MSHV partition: 2024 usable GSIs, resample for level MSIs (routes are
// MshvIrqFdRoutes). Release() of a route outliving the partition returns Ok; a failed teardown
// deassign keeps the entry until the next push.
Result<std::unique_ptr<KernelIrqFd>> CreateMshvIrqFd(std::shared_ptr<MshvIoctl> ioctl,
                                                     int partition_fd);

}  // namespace virt::mshv
