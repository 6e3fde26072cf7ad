// IrqFdKernelOps: the kernel calls a kernel-irqfd backend (KVM, MSHV) supplies to KernelIrqFd.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "virt/gsi_table.h"
#include "virt/msi_routing_table.h"
#include "virt/result.h"

namespace virt {

// Exactly what differs between kernels with irqfds and a whole-table MSI routing push; the
// ordering rules, batching and rollback around these calls live in KernelIrqFd. Each call is
// one ioctl with no policy (AssignEach: one per registration). KernelIrqFd serialises all calls on one lock and makes none after
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

  // What one Assign is asked for, as AssignEach takes it.
  struct Registration {
    Gsi gsi;
    int event_fd;
    int resample_fd;
  };
  // Assign for each of `registrations` in order (a batch's new routes), every one attempted
  // even after a failure: the index of each that failed is appended to `failed` and the first
  // failure is returned (Ok when none failed). A backend overrides it to make the ioctls from
  // its own loop: each then returns one function level closer to that loop than through a
  // virtual Assign (where a system call clobbers the return predictor, each level costs a
  // mispredict). The default calls Assign for each.
  virtual Status AssignEach(std::span<const Registration> registrations,
                            std::vector<uint32_t>& failed) {
    return AssignEachWith(registrations, failed, [this](const Registration& r) {
      return Assign(r.gsi, r.event_fd, r.resample_fd);
    });
  }

  // Detaches `event_fd` from `gsi` (the same ioctl with the DEASSIGN flag).
  virtual Status Deassign(Gsi gsi, int event_fd) = 0;

 protected:
  // AssignEach's loop around `assign_one(registration)` (returning a Status), for overrides.
  // Always inline, so the override's own frame makes each call.
  template <typename AssignOne>
  [[gnu::always_inline]] static Status AssignEachWith(
      std::span<const Registration> registrations, std::vector<uint32_t>& failed,
      AssignOne&& assign_one) {
    Status first = Ok();
    for (uint32_t i = 0; i < registrations.size(); ++i) {
      if (Status s = assign_one(registrations[i]); !s) [[unlikely]] {
        failed.push_back(i);
        if (first) first = std::move(s);
      }
    }
    return first;
  }
};

}  // namespace virt
