// KernelIrqFdCore: the route state machine shared by a KernelIrqFd and every route it created.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "light_mutex.h"
#include "virt/gsi_table.h"
#include "virt/irqfd.h"
#include "virt/irqfd_kernel_ops.h"
#include "virt/kernel_irqfd.h"
#include "virt/msi_routing_table.h"

namespace virt {

// Owned jointly by the KernelIrqFd and its routes, so a route that outlives the partition finds
// alive_ == false instead of freed memory: each holds one reference, counted under mu_ (a route
// takes its reference inside NewRoute's critical section and gives it back in FreeRoute's, so
// no atomic read-modify-write is added to either), and the last one deletes the core. All
// members are guarded by mu_; every ops_ call is made under it. The ordering rules are
// KernelIrqFd's (see its header).
//
// Each allocation of a GSI gets an owner ticket, unique for the core's life; the route passes it
// back with every call, and the core acts only while the GSI's slot still carries it. So a call
// that races with its own route's Release (which clears the ticket under mu_) fails with
// kAlreadyReleased instead of touching a GSI that may already belong to a newer route, and a
// route needs no lock of its own on the hot path.
class KernelIrqFdCore {
 public:
  // The core starts with one reference: the KernelIrqFd's (given back with DropReference).
  KernelIrqFdCore(std::unique_ptr<IrqFdKernelOps> ops, GsiTable gsis, KernelIrqFd::Options options);
  KernelIrqFdCore(const KernelIrqFdCore&) = delete;
  KernelIrqFdCore& operator=(const KernelIrqFdCore&) = delete;

  // Public for KernelIrqFd::Create's unique_ptr only: once a KernelIrqFd holds the core, the
  // last reference (DropReference, FreeRoute) deletes it.
  ~KernelIrqFdCore();

  // Gives back the KernelIrqFd's reference; deletes the core when no route holds one either.
  void DropReference();

  const KernelIrqFd::Options& options() const { return options_; }

  // A new masked route with a new eventfd, on a free GSI or, with `at`, exactly *at (then
  // GsiTable::AllocateAt's errors), with a fresh ticket, built in the core's route memory; the
  // route holds a reference to the core. kPartitionGone after Shutdown; on any failure nothing
  // is taken.
  // Defined inline in kernel_irqfd_core.cc, for KernelIrqFd's NewRoute and NewRouteAt there.
  Result<std::unique_ptr<IrqFdRoute>> NewRoute(const Gsi* at);
  // Takes back the memory of a route NewRoute built, once the route is destroyed, and the
  // route's reference (the last one deletes the core: `this` may be gone on return). Never
  // fails: the free list has room for every piece already.
  void FreeRoute(void* memory);

  Result<std::vector<RouteState>> Routes();
  // resample_fd >= 0 registers the irqfd with the RESAMPLE flag (level-triggered MSI). Inline
  // (below): a batch's SetMsi is a few checks and stores, made from the route's own SetMsi.
  Status SetMsi(Gsi gsi, uint64_t owner, int event_fd, int resample_fd, const MsiMessage& msi);
  Status ClearMsi(Gsi gsi, uint64_t owner, int event_fd);
  // Full teardown of a route: disarm, remove entry, push, free GSI. Clears the ticket.
  Status Drop(Gsi gsi, uint64_t owner, int event_fd);
  // The entry of an armed route (or one a batch will arm); nullopt when masked or released.
  std::optional<MsiMessage> CurrentMsi(Gsi gsi, uint64_t owner);

  // The kAlreadyReleased failure of a route's call `op` (cold path; a Status, so a hot caller
  // returns it without building the error in its own frame).
  static Status ReleasedError(const char* op, Gsi gsi);

  void BeginBatch();
  Status EndBatch();
  void Shutdown();

  void SetErrorHandler(IrqFd::ErrorHandler handler);
  // Sends `error` to the handler (stderr when none), under the lock.
  void Report(const Error& error);
  uint64_t push_count();
  uint32_t allocated_gsis();

 private:
  struct Slot {
    uint64_t owner = 0;          // ticket of the live route holding the GSI; 0: none
    bool armed = false;          // assigned in the kernel
    bool arm_pending = false;    // enabled inside a batch, arm after the push
    int event_fd = -1;
    int resample_fd = -1;        // wanted: >= 0 for a level-triggered MSI
    int armed_resample_fd = -1;  // as registered while armed
  };

  Status CheckAlive(const char* op) const;
  static Error GoneError(const char* op);
  static Status Gone(const char* op);  // GoneError as a Status (cold, like the next)
  static Status InvalidMsi(const MsiMessage& msi);
  void ReportLocked(const Error& error);
  Status Assign(Gsi gsi, Slot& slot);
  // SetMsi when the inline fast path does not apply: the checks, then SetMsiAndPush.
  Status SetMsiSlow(Gsi gsi, uint64_t owner, int event_fd, int resample_fd,
                    const MsiMessage& msi);
  // SetMsi outside a batch or with an edge <-> level switch: push, (re)arm, roll back.
  Status SetMsiAndPush(Gsi gsi, Slot& slot, int event_fd, int resample_fd, const MsiMessage& msi,
                       bool rearm);
  // Removes entries of GSIs waiting to be freed, pushes the table, then frees those GSIs.
  Status Push();
  void RestoreEntry(Gsi gsi, const std::optional<MsiMessage>& previous);
  // Memory for one route object from the free list, growing it by a block when it is empty.
  void* TakeRouteMemory();
  void AddRouteBlock();  // kRoutesPerBlock more pieces on the free list
  void PutBackRouteMemory(void* memory);

  // What NewRoute and a batch's SetMsi touch comes first, in the core's first two cache lines
  // (fewer lines per route measured faster; docs/performance.md, route programming); gsis_ must
  // precede slots_ and table_, which are sized from it.
  LightMutex mu_;
  bool alive_ = true;
  uint32_t batch_depth_ = 0;
  uint32_t references_ = 1;  // the KernelIrqFd's and one per live route
  uint64_t last_owner_ = 0;  // tickets handed out so far
  GsiTable gsis_;
  // Route objects live in blocks of kRoutesPerBlock owned here (routes keep the core alive, so
  // the blocks outlive them), so creating and destroying a route never goes through malloc:
  // with thousands of live routes that was ~180 instructions a route, its slow path.
  std::vector<void*> free_route_memory_;  // capacity: every piece of every block
  std::vector<Slot> slots_;               // indexed by GSI
  std::vector<Gsi> arm_pending_;          // GSIs with Slot::arm_pending set
  MsiRoutingTable table_;
  const std::unique_ptr<IrqFdKernelOps> ops_;
  const KernelIrqFd::Options options_;
  // EndBatch's routes to arm and those whose assign failed (kept for their capacity).
  std::vector<IrqFdKernelOps::Registration> arming_;
  std::vector<uint32_t> arm_failed_;
  std::vector<Gsi> free_after_push_;
  IrqFd::ErrorHandler on_error_;
  std::vector<std::unique_ptr<std::byte[]>> route_blocks_;
};

// The batch fast path inline: a live route's enable or retarget inside a batch with its
// registration unchanged (edge <-> level changes the RESAMPLE flag, which only an assign sets)
// only edits the in-memory entry; EndBatch pushes and arms, and nothing needs rolling back.
// Anything else, failures included, is SetMsiSlow: out of line, it takes the lock again and
// decides from scratch, so it is exactly the call made from its own lock acquisition.
inline Status KernelIrqFdCore::SetMsi(Gsi gsi, uint64_t owner, int event_fd, int resample_fd,
                                      const MsiMessage& msi) {
  if (msi.IsValid()) [[likely]] {
    std::lock_guard lock(mu_);  // released before SetMsiSlow below
    Slot& slot = slots_[gsi];  // sized like the GSI table: every route's GSI indexes it
    if (alive_ && slot.owner == owner && batch_depth_ > 0 &&
        !(slot.armed && slot.armed_resample_fd != resample_fd)) [[likely]] {
      table_.SetWithinCapacity(gsi, msi);
      slot.event_fd = event_fd;
      slot.resample_fd = resample_fd;
      if (!slot.armed && !slot.arm_pending) {
        slot.arm_pending = true;
        arm_pending_.push_back(gsi);  // within the capacity reserved at construction
      }
      return Ok();
    }
  }
  return SetMsiSlow(gsi, owner, event_fd, resample_fd, msi);
}

}  // namespace virt
