// KvmIrqFd: GSI table + MSI routing table + KVM_IRQFD registrations, shared with live routes.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "kvm_routing_buffer.h"
#include "virt/gsi_table.h"
#include "virt/irqfd.h"
#include "virt/kvm/kvm_ioctl.h"
#include "virt/msi_routing_table.h"

namespace virt::kvm {

// State shared by the partition's IrqFd and every route it created; routes keep it alive, so a
// route that outlives the partition finds alive_ == false instead of freed memory. All members
// are guarded by mu_.
//
// Ordering rules (KVM, and other VMMs' panics on AMD hosts, demand them):
//  - a route is armed (KVM_IRQFD assign) only after its entry is in a pushed table;
//  - it is disarmed (KVM_IRQFD deassign) before its entry leaves the table;
//  - its GSI returns to the allocator only after a push without the entry succeeded.
class KvmIrqFdCore {
 public:
  KvmIrqFdCore(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, GsiTable gsis);

  Result<Gsi> AllocateGsi();
  Status SetMsi(Gsi gsi, int event_fd, const MsiMessage& msi);
  Status ClearMsi(Gsi gsi, int event_fd);
  // Full teardown of a route: disarm, remove entry, push, free GSI.
  Status Drop(Gsi gsi, int event_fd);
  std::optional<MsiMessage> CurrentMsi(Gsi gsi);

  void BeginBatch();
  Status EndBatch();
  // The partition is going away: from now on every call fails with kPartitionGone and nothing
  // touches the VM fd.
  void Shutdown();

  void SetErrorHandler(IrqFd::ErrorHandler handler);
  // Sends `error` to the handler (stderr when none). The handler runs under the core's lock and
  // must not call back into the IrqFd or its routes.
  void Report(const Error& error);
  uint64_t push_count();

 private:
  struct Slot {
    bool armed = false;        // KVM_IRQFD assigned
    bool arm_pending = false;  // enabled inside a batch, arm after the push
    int event_fd = -1;
  };

  Status CheckAlive(const char* op) const;
  void ReportLocked(const Error& error);
  Status Assign(Gsi gsi, int event_fd);
  Status Deassign(Gsi gsi, int event_fd);
  // Removes entries of GSIs waiting to be freed, pushes the table, then frees those GSIs.
  Status Push();

  std::mutex mu_;
  std::shared_ptr<KvmIoctl> ioctl_;
  int vm_fd_;
  bool alive_ = true;
  GsiTable gsis_;
  KvmRoutingBuffer buffer_;
  MsiRoutingTable table_;
  std::vector<Slot> slots_;       // indexed by GSI
  std::vector<Gsi> arm_pending_;  // GSIs with Slot::arm_pending set
  std::vector<Gsi> free_after_push_;
  uint32_t batch_depth_ = 0;
  IrqFd::ErrorHandler on_error_;
};

// The IrqFd a KVM partition hands out.
class KvmIrqFd final : public IrqFd {
 public:
  // GSIs [0, max_routes - 16) (so the table with the 40 irqchip entries still fits KVM's
  // max_routes), with 0-23 reserved for the IOAPIC pins.
  static Result<std::unique_ptr<KvmIrqFd>> Create(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                  int max_routes);

  Result<std::unique_ptr<IrqFdRoute>> NewRoute() override;
  void BeginBatch() override { core_->BeginBatch(); }
  Status EndBatch() override { return core_->EndBatch(); }
  void SetErrorHandler(ErrorHandler handler) override {
    core_->SetErrorHandler(std::move(handler));
  }
  void ReportError(const Error& error) override { core_->Report(error); }
  uint64_t push_count() const override { return core_->push_count(); }

  void Shutdown() { core_->Shutdown(); }

 private:
  explicit KvmIrqFd(std::shared_ptr<KvmIrqFdCore> core) : core_(std::move(core)) {}
  std::shared_ptr<KvmIrqFdCore> core_;
};

}  // namespace virt::kvm
