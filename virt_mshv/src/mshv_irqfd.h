// MshvIrqFd: GSI table + MSI routing table + MSHV_IRQFD registrations, shared with live routes.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "mshv_routing_buffer.h"
#include "virt/gsi_table.h"
#include "virt/irqfd.h"
#include "virt/msi_routing_table.h"
#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

// State shared by the partition's IrqFd and every route it created; routes keep it alive, so a
// route that outlives the partition finds alive_ == false instead of freed memory. All members
// are guarded by mu_.
//
// Ordering rules (the kernel binds the interrupt when the irqfd is assigned, on arm64 for good):
//  - a route is armed (MSHV_IRQFD assign) only after its entry is in a pushed table;
//  - it is disarmed (MSHV_IRQFD deassign) before its entry leaves the table;
//  - its GSI returns to the allocator only after a push without the entry succeeded.
class MshvIrqFdCore {
 public:
  MshvIrqFdCore(std::shared_ptr<MshvIoctl> ioctl, int partition_fd, GsiTable gsis);

  Result<Gsi> AllocateGsi();
  // resample_fd >= 0 registers the irqfd with MSHV_IRQFD_BIT_RESAMPLE (level-triggered MSI).
  Status SetMsi(Gsi gsi, int event_fd, int resample_fd, const MsiMessage& msi);
  Status ClearMsi(Gsi gsi, int event_fd);
  // Full teardown of a route: disarm, remove entry, push, free GSI.
  Status Drop(Gsi gsi, int event_fd);
  std::optional<MsiMessage> CurrentMsi(Gsi gsi);

  void BeginBatch();
  Status EndBatch();
  // The partition is going away: from now on every call fails with kPartitionGone and nothing
  // touches the partition fd.
  void Shutdown();

  void SetErrorHandler(IrqFd::ErrorHandler handler);
  // Sends `error` to the handler (stderr when none). The handler runs under the core's lock and
  // must not call back into the IrqFd or its routes.
  void Report(const Error& error);
  uint64_t push_count();
  uint32_t allocated_gsis();

 private:
  struct Slot {
    bool armed = false;        // MSHV_IRQFD assigned
    bool arm_pending = false;  // enabled inside a batch, arm after the push
    int event_fd = -1;
    int resample_fd = -1;        // wanted: >= 0 for a level-triggered MSI
    int armed_resample_fd = -1;  // as registered while armed
  };

  Status CheckAlive(const char* op) const;
  void ReportLocked(const Error& error);
  Status Assign(Gsi gsi, Slot& slot);
  Status Deassign(Gsi gsi, int event_fd);
  // Removes entries of GSIs waiting to be freed, pushes the table, then frees those GSIs.
  Status Push();
  void RestoreEntry(Gsi gsi, const std::optional<MsiMessage>& previous);

  std::mutex mu_;
  std::shared_ptr<MshvIoctl> ioctl_;
  int partition_fd_;
  bool alive_ = true;
  GsiTable gsis_;
  MshvRoutingBuffer buffer_;
  MsiRoutingTable table_;
  std::vector<Slot> slots_;       // indexed by GSI
  std::vector<Gsi> arm_pending_;  // GSIs with Slot::arm_pending set
  std::vector<Gsi> free_after_push_;
  uint32_t batch_depth_ = 0;
  IrqFd::ErrorHandler on_error_;
};

// The IrqFd an MSHV partition hands out; its routes are MshvIrqFdRoutes.
class MshvIrqFd final : public IrqFd {
 public:
  static constexpr uint32_t kGsiCount = 2048;    // routing table slots (as OpenVMM)
  static constexpr uint32_t kReservedGsis = 24;  // 0-23: IOAPIC pins (as QEMU)

  static Result<std::unique_ptr<MshvIrqFd>> Create(std::shared_ptr<MshvIoctl> ioctl,
                                                   int partition_fd);

  // eventfd + a GSI. kExhausted when all 2024 usable GSIs are taken.
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
  explicit MshvIrqFd(std::shared_ptr<MshvIrqFdCore> core) : core_(std::move(core)) {}
  std::shared_ptr<MshvIrqFdCore> core_;
};

}  // namespace virt::mshv
