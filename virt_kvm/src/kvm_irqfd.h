// KvmIrqFdOps: KVM_SET_GSI_ROUTING and KVM_IRQFD under the shared KernelIrqFd.
#pragma once

#include <memory>
#include <span>

#include "kvm_routing_buffer.h"
#include "virt/irqfd_kernel_ops.h"
#include "virt/kernel_irqfd.h"
#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {

// The KVM side of a KernelIrqFd: one ioctl per call, on the VM fd (which the partition keeps
// open until after KernelIrqFd::Shutdown). Ordering, batching and rollback are KernelIrqFd's;
// KVM needs them too (and other VMMs' panics on AMD hosts show why).
class KvmIrqFdOps final : public IrqFdKernelOps {
 public:
  // `gsi_capacity`: the GSI table's size, the most MSI entries a push can carry.
  KvmIrqFdOps(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, uint32_t gsi_capacity)
      : ioctl_(std::move(ioctl)),
        vm_fd_(vm_fd),
        buffer_(/*irqchip_defaults=*/true, gsi_capacity) {}

  // KVM_SET_GSI_ROUTING with the 40 irqchip pin routes followed by `entries`.
  Status PushTable(std::span<const RoutingEntry> entries) override;
  // KVM_IRQFD {fd, gsi}; never asked for resample (the KVM backend does not expose it yet).
  Status Assign(Gsi gsi, int event_fd, int resample_fd) override;
  // The same KVM_IRQFD for each, from this loop.
  Status AssignEach(std::span<const Registration> registrations,
                    std::vector<uint32_t>& failed) override;
  // KVM_IRQFD {fd, gsi, KVM_IRQFD_FLAG_DEASSIGN}.
  Status Deassign(Gsi gsi, int event_fd) override;

 private:
  std::shared_ptr<KvmIoctl> ioctl_;
  int vm_fd_;
  KvmRoutingBuffer buffer_;
};

// The IrqFd of a KVM partition: GSIs [0, max_routes - 16) (so the table with the 40 irqchip
// entries still fits KVM's max_routes), with 0-23 reserved for the IOAPIC pins. kUnavailable
// when max_routes leaves no MSI GSI. Release() of a route outliving the partition fails with
// kPartitionGone; a failed teardown deassign still removes the entry at once.
Result<std::unique_ptr<KernelIrqFd>> CreateKvmIrqFd(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                    int max_routes);

}  // namespace virt::kvm
