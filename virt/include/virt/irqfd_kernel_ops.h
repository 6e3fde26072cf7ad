// IrqFdKernelOps: the three kernel calls a kernel-irqfd backend (KVM, MSHV) supplies to KernelIrqFd.
#pragma once

#include <span>

#include "virt/gsi_table.h"
#include "virt/msi_routing_table.h"
#include "virt/result.h"

namespace virt {

// Exactly what differs between kernels with irqfds and a whole-table MSI routing push; the
// ordering rules, batching and rollback around these calls live in KernelIrqFd. Each call is
// one ioctl with no policy. KernelIrqFd serialises all calls on one lock and makes none after
// KernelIrqFd::Shutdown, so an implementation may hold a bare fd of the partition.
class IrqFdKernelOps {
 public:
  virtual ~IrqFdKernelOps() = default;

  // Installs `entries` (MSI routes, in table order) as the whole routing table, replacing the
  // previous one (KVM_SET_GSI_ROUTING, MSHV_SET_MSI_ROUTING). The backend builds its own buffer
  // (KVM adds its irqchip pin routes). On failure the kernel must still hold the old table.
  virtual Status PushTable(std::span<const RoutingEntry> entries) = 0;

  // Attaches `event_fd` to `gsi` (KVM_IRQFD / MSHV_IRQFD assign). resample_fd >= 0 asks for a
  // level-triggered registration that signals resample_fd on EOI (the RESAMPLE flag); only
  // called with resample_fd >= 0 when KernelIrqFd::Options::resample is set.
  virtual Status Assign(Gsi gsi, int event_fd, int resample_fd) = 0;

  // Detaches `event_fd` from `gsi` (the same ioctl with the DEASSIGN flag).
  virtual Status Deassign(Gsi gsi, int event_fd) = 0;
};

}  // namespace virt
