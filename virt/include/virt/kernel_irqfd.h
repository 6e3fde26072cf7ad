// KernelIrqFd: the IrqFd of a backend whose kernel has irqfds and whole-table MSI routing.
#pragma once

#include <cstdint>
#include <memory>

#include "virt/gsi_table.h"
#include "virt/irqfd.h"
#include "virt/irqfd_kernel_ops.h"

namespace virt {

class KernelIrqFdCore;

// One implementation of the IrqFd contract over any IrqFdKernelOps (KVM, MSHV): a GSI table, an
// MsiRoutingTable pushed whole, and one kernel irqfd registration per enabled route. It keeps
// the ordering rules the kernels need (see the ops' calls in each method):
//  - a route is armed (Assign) only after its entry is in a pushed table;
//  - it is disarmed (Deassign) before its entry leaves the table;
//  - its GSI returns to the allocator only after a push without the entry succeeded.
// Inside a batch, enabling a route only edits the table; the outermost EndBatch pushes once and
// then arms. A failed push rolls the table back to what the kernel holds. Routes keep the
// shared state alive, so a route outliving the partition fails with kPartitionGone after
// Shutdown instead of touching freed memory or a closed fd. Thread-safe.
class KernelIrqFd final : public IrqFd {
 public:
  // What a backend's kernel irqfd supports beyond the common contract.
  struct Options {
    // Level-triggered MSIs (data bit 15) get a resample event and are assigned with the
    // kernel's RESAMPLE flag; switching a live route between edge and level re-registers it.
    bool resample = false;
  };

  // `gsis` has the backend's capacity and reserved ranges applied already.
  static std::unique_ptr<KernelIrqFd> Create(std::unique_ptr<IrqFdKernelOps> ops, GsiTable gsis,
                                             Options options);
  ~KernelIrqFd() override;

  // A masked KernelIrqFdRoute with a new eventfd and GSI; kExhausted when no GSI is free,
  // kPartitionGone after Shutdown.
  Result<std::unique_ptr<IrqFdRoute>> NewRoute() override;
  // GsiTable::AllocateAt's errors; kPartitionGone after Shutdown.
  Result<std::unique_ptr<IrqFdRoute>> NewRouteAt(Gsi gsi) override;
  // Routes held by live routes (not those dropped and waiting for the next push), by GSI, with
  // the MSI each delivers (or will once its batch commits); kPartitionGone after Shutdown.
  Result<std::vector<RouteState>> Routes() const override;
  void BeginBatch() override;
  Status EndBatch() override;
  void SetErrorHandler(ErrorHandler handler) override;
  // The handler runs under the IrqFd's lock and must not call back into it or its routes.
  void ReportError(const Error& error) override;
  uint64_t push_count() const override;

  // GSIs held by routes or parked until the next push (for tests).
  uint32_t allocated_gsis() const;

  // The partition is going away (its fd closes next, releasing every irqfd at once): from now
  // on every call fails with kPartitionGone and none reaches the ops.
  void Shutdown();

 private:
  explicit KernelIrqFd(KernelIrqFdCore* core);
  KernelIrqFdCore* const core_;  // holds one of the core's references (given back on destruction)
};

}  // namespace virt
