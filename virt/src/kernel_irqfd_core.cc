// KernelIrqFdCore: route arming/teardown ordering, batching and rollback over IrqFdKernelOps.
#include "kernel_irqfd_core.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <new>
#include <string>
#include <utility>

#include "virt/kernel_irqfd_route.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define VIRT_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define VIRT_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define VIRT_POISON(p, n) ((void)(p), (void)(n))
#define VIRT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace virt {
namespace {

// One block holds this many route objects (4 KiB of 64-byte routes).
constexpr size_t kRoutesPerBlock = 64;
// Each piece is a whole number of the route's alignment, so every piece in a block is aligned.
constexpr size_t kRoutePiece =
    (sizeof(KernelIrqFdRoute) + alignof(KernelIrqFdRoute) - 1) / alignof(KernelIrqFdRoute) *
    alignof(KernelIrqFdRoute);
static_assert(alignof(KernelIrqFdRoute) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
              "route blocks come from new[], aligned only to the default");

}  // namespace

KernelIrqFdCore::KernelIrqFdCore(std::unique_ptr<IrqFdKernelOps> ops, GsiTable gsis,
                                 KernelIrqFd::Options options)
    : gsis_(std::move(gsis)),
      slots_(gsis_.capacity()),
      table_(gsis_.capacity(),
             [this](std::span<const RoutingEntry> entries) { return ops_->PushTable(entries); }),
      ops_(std::move(ops)),
      options_(options) {
  // A batch enabling every route never reallocates.
  arm_pending_.reserve(gsis_.capacity());
  arming_.reserve(gsis_.capacity());
}

KernelIrqFdCore::~KernelIrqFdCore() {
  // Every route is gone (each held a reference): unpoison the blocks before they are freed.
  for (const auto& block : route_blocks_) {
    VIRT_UNPOISON(block.get(), kRoutePiece * kRoutesPerBlock);
  }
}

[[gnu::noinline]] void KernelIrqFdCore::AddRouteBlock() {
  auto block = std::make_unique_for_overwrite<std::byte[]>(kRoutePiece * kRoutesPerBlock);
  free_route_memory_.reserve((route_blocks_.size() + 1) * kRoutesPerBlock);
  route_blocks_.reserve(route_blocks_.size() + 1);
  // Handed out from the block's start: the pieces of one batch of new routes sit together.
  for (size_t i = kRoutesPerBlock; i-- > 0;) {
    free_route_memory_.push_back(block.get() + i * kRoutePiece);
  }
  VIRT_POISON(block.get(), kRoutePiece * kRoutesPerBlock);
  route_blocks_.push_back(std::move(block));
}

inline void* KernelIrqFdCore::TakeRouteMemory() {
  if (free_route_memory_.empty()) [[unlikely]] AddRouteBlock();
  void* memory = free_route_memory_.back();
  free_route_memory_.pop_back();
  VIRT_UNPOISON(memory, kRoutePiece);
  return memory;
}

void KernelIrqFdCore::PutBackRouteMemory(void* memory) {
  VIRT_POISON(memory, kRoutePiece);
  free_route_memory_.push_back(memory);  // within capacity: no allocation, no throw
}

void KernelIrqFdCore::FreeRoute(void* memory) {
  bool last;
  {
    std::lock_guard lock(mu_);
    PutBackRouteMemory(memory);
    last = --references_ == 0;
  }
  // Nobody else holds a reference, so nobody can be waiting on mu_ or be about to take it.
  if (last) delete this;
}

void KernelIrqFdCore::DropReference() {
  bool last;
  {
    std::lock_guard lock(mu_);
    last = --references_ == 0;
  }
  if (last) delete this;
}

[[gnu::cold, gnu::noinline]] Error KernelIrqFdCore::GoneError(const char* op) {
  return Error::Make(ErrorCode::kPartitionGone, op, "the partition has been destroyed");
}

[[gnu::cold, gnu::noinline]] Status KernelIrqFdCore::Gone(const char* op) {
  return GoneError(op);
}

// Out of line and cold: Decode's error (it names the fault) kept off SetMsi's frame.
[[gnu::cold, gnu::noinline]] Status KernelIrqFdCore::InvalidMsi(const MsiMessage& msi) {
  return msi.Decode().error();
}

[[gnu::cold, gnu::noinline]] Status KernelIrqFdCore::ReleasedError(const char* op, Gsi gsi) {
  return Error::Make(ErrorCode::kAlreadyReleased, op,
                     "route for GSI " + std::to_string(gsi) + " was released");
}

Status KernelIrqFdCore::CheckAlive(const char* op) const {
  if (alive_) return Ok();
  return Gone(op);
}

// Inlined into KernelIrqFd's NewRoute and NewRouteAt below, with Event::Create inlined into it:
// the eventfd system call returns straight into the face's frame, one return from the caller
// (each return level after a system call can mispredict: docs/performance.md).
[[gnu::always_inline]] inline Result<std::unique_ptr<IrqFdRoute>> KernelIrqFdCore::NewRoute(
    const Gsi* at) {
  auto event = Event::Create();  // outside the lock: a system call
  if (!event) [[unlikely]] return event.error();
  Gsi gsi = 0;
  uint64_t owner = 0;
  void* memory = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!alive_) [[unlikely]] {
      return GoneError(at != nullptr ? "IrqFd::NewRouteAt" : "IrqFd::NewRoute");
    }
    memory = TakeRouteMemory();  // first: nothing to undo if growing the blocks throws
    auto got = at != nullptr ? gsis_.AllocateAt(*at) : gsis_.Allocate();
    if (!got) [[unlikely]] {
      PutBackRouteMemory(memory);
      return got.error();
    }
    gsi = *got;
    owner = ++last_owner_;
    slots_[gsi].owner = owner;
    ++references_;  // the route's, given back by FreeRoute
  }
  return std::unique_ptr<IrqFdRoute>(
      ::new (memory) KernelIrqFdRoute(this, gsi, owner, std::move(*event)));
}

Result<std::unique_ptr<IrqFdRoute>> KernelIrqFd::NewRoute() { return core_->NewRoute(nullptr); }

Result<std::unique_ptr<IrqFdRoute>> KernelIrqFd::NewRouteAt(Gsi gsi) {
  return core_->NewRoute(&gsi);
}

Result<std::vector<RouteState>> KernelIrqFdCore::Routes() {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFd::Routes"); !s) return s.error();
  std::vector<RouteState> out;
  for (Gsi gsi = 0; gsi < gsis_.capacity(); ++gsi) {
    if (!gsis_.IsAllocated(gsi)) continue;
    if (std::find(free_after_push_.begin(), free_after_push_.end(), gsi) !=
        free_after_push_.end()) {
      continue;  // dropped, its GSI waits for the next push
    }
    out.push_back({gsi, table_.Get(gsi)});
  }
  return out;
}

// Inline into its callers (EndBatch's arm loop above all): one call level fewer to return
// through after each KVM_IRQFD.
[[gnu::always_inline]] inline Status KernelIrqFdCore::Assign(Gsi gsi, Slot& slot) {
  if (Status s = ops_->Assign(gsi, slot.event_fd, slot.resample_fd); !s) return s;
  slot.armed = true;
  slot.armed_resample_fd = slot.resample_fd;
  return Ok();
}

Status KernelIrqFdCore::Push() {
  for (Gsi gsi : free_after_push_) table_.Remove(gsi);
  Status pushed = table_.Flush();
  if (!pushed) return pushed;  // the table rolled back; GSIs stay parked for the next push
  for (Gsi gsi : free_after_push_) (void)gsis_.Free(gsi);
  free_after_push_.clear();
  return Ok();
}

void KernelIrqFdCore::RestoreEntry(Gsi gsi, const std::optional<MsiMessage>& previous) {
  if (previous) {
    (void)table_.Set(gsi, *previous);
  } else {
    table_.Remove(gsi);
  }
}

[[gnu::noinline]] Status KernelIrqFdCore::SetMsiSlow(Gsi gsi, uint64_t owner, int event_fd,
                                                     int resample_fd, const MsiMessage& msi) {
  if (!msi.IsValid()) return InvalidMsi(msi);
  std::lock_guard lock(mu_);
  if (!alive_) return Gone("IrqFdRoute::SetMsi");
  Slot& slot = slots_[gsi];
  if (slot.owner != owner) return ReleasedError("IrqFdRoute::SetMsi", gsi);
  // Edge <-> level changes the RESAMPLE flag, which only an assign sets: SetMsiAndPush detaches
  // first, while the old entry is still in the kernel's table.
  const bool rearm = slot.armed && slot.armed_resample_fd != resample_fd;
  return SetMsiAndPush(gsi, slot, event_fd, resample_fd, msi, rearm);
}

// Out of line: keeps the batch fast path of SetMsi small.
[[gnu::noinline]] Status KernelIrqFdCore::SetMsiAndPush(Gsi gsi, Slot& slot, int event_fd, int resample_fd,
                                      const MsiMessage& msi, bool rearm) {
  const std::optional<MsiMessage> previous = table_.Get(gsi);
  const int previous_resample = slot.resample_fd;
  if (Status s = table_.Set(gsi, msi); !s) return s;
  slot.event_fd = event_fd;
  slot.resample_fd = resample_fd;

  if (rearm) {
    if (Status s = ops_->Deassign(gsi, event_fd); !s) {
      RestoreEntry(gsi, previous);
      slot.resample_fd = previous_resample;
      return s;
    }
    slot.armed = false;
    slot.armed_resample_fd = -1;
  }

  if (batch_depth_ > 0) {
    if (!slot.armed && !slot.arm_pending) {
      slot.arm_pending = true;
      arm_pending_.push_back(gsi);
    }
    return Ok();
  }
  if (Status s = Push(); !s) {
    // Rolled back: the kernel holds the previous entry. Put the previous registration back.
    slot.resample_fd = previous_resample;
    if (rearm) {
      if (Status again = Assign(gsi, slot); !again) ReportLocked(again.error());
    }
    return s;
  }
  if (slot.armed) return Ok();  // a retarget: the push was all it took
  if (Status s = Assign(gsi, slot); !s) {
    // Undo the entry so the table again matches a route that was never enabled (a failed
    // edge <-> level switch leaves the route masked: its old registration is gone).
    RestoreEntry(gsi, rearm ? std::nullopt : previous);
    slot.resample_fd = previous_resample;
    if (Status undo = Push(); !undo) ReportLocked(undo.error());
    return s;
  }
  return Ok();
}

Status KernelIrqFdCore::ClearMsi(Gsi gsi, uint64_t owner, int event_fd) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("IrqFdRoute::ClearMsi"); !s) return s;
  Slot& slot = slots_[gsi];
  if (slot.owner != owner) return ReleasedError("IrqFdRoute::ClearMsi", gsi);
  if (slot.armed) {
    // Disarm first: the entry must not leave the table while an irqfd still points at it. A
    // disarmed irqfd leaves later signals counted on the eventfd; the next assign sees them.
    if (Status s = ops_->Deassign(gsi, event_fd); !s) return s;
    slot.armed = false;
    slot.armed_resample_fd = -1;
  }
  if (slot.arm_pending) {
    slot.arm_pending = false;
    std::erase(arm_pending_, gsi);
  }
  if (!table_.Remove(gsi) || batch_depth_ > 0) return Ok();
  // On failure the entry stays in the kernel table, but nothing is attached to it any more: the
  // route is masked either way and the caller learns the push failed.
  return Push();
}

Status KernelIrqFdCore::Drop(Gsi gsi, uint64_t owner, int event_fd) {
  std::lock_guard lock(mu_);
  // Closing the partition fd released everything already: nothing to undo, but Release() fails
  // like every other call on a route that outlived its partition.
  if (!alive_) [[unlikely]] return Gone("IrqFdRoute::Release");
  Slot& slot = slots_[gsi];
  if (slot.owner != owner) return ReleasedError("IrqFdRoute::Release", gsi);
  Status result = Ok();
  if (slot.arm_pending) std::erase(arm_pending_, gsi);
  if (slot.armed) {
    if (Status s = ops_->Deassign(gsi, event_fd); !s) {
      // The irqfd keeps pointing at the entry until the route closes its eventfd (the kernel
      // drops an irqfd whose eventfd is released), which happens right after this returns. So
      // the entry must outlive this call: park the GSI; the next push removes the entry.
      slot = Slot{};
      free_after_push_.push_back(gsi);
      return s;
    }
  }
  slot = Slot{};
  if (!table_.Get(gsi) && !table_.Committed(gsi)) {
    (void)gsis_.Free(gsi);
    return result;
  }
  // The GSI may be reused only once a table without its entry is in the kernel.
  free_after_push_.push_back(gsi);
  if (batch_depth_ > 0) return result;
  if (Status s = Push(); !s && result) result = s;
  return result;
}

std::optional<MsiMessage> KernelIrqFdCore::CurrentMsi(Gsi gsi, uint64_t owner) {
  std::lock_guard lock(mu_);
  if (!alive_) return std::nullopt;
  // Only an armed route (or one a batch will arm) delivers its entry. A ClearMsi whose push
  // failed leaves the entry in the table, but the route is masked all the same.
  const Slot& slot = slots_[gsi];
  if (slot.owner != owner) return std::nullopt;  // released
  if (!slot.armed && !slot.arm_pending) return std::nullopt;
  return table_.Get(gsi);
}

void KernelIrqFdCore::BeginBatch() {
  std::lock_guard lock(mu_);
  ++batch_depth_;
}

Status KernelIrqFdCore::EndBatch() {
  std::lock_guard lock(mu_);
  if (batch_depth_ == 0) {
    return Error::Make(ErrorCode::kFailedPrecondition, "IrqFd::EndBatch", "no batch is open");
  }
  if (--batch_depth_ > 0) return Ok();
  if (Status s = CheckAlive("IrqFd::EndBatch"); !s) return s;

  // Both lists keep the capacity reserved at construction.
  arming_.clear();
  for (Gsi gsi : arm_pending_) {
    Slot& slot = slots_[gsi];
    slot.arm_pending = false;
    arming_.push_back({gsi, slot.event_fd, slot.resample_fd});
  }
  arm_pending_.clear();

  if (Status s = Push(); !s) return s;  // the routes enabled in the batch stay masked

  arm_failed_.clear();
  Status result = ops_->AssignEach(arming_, arm_failed_);
  auto failed = arm_failed_.begin();
  for (uint32_t i = 0; i < arming_.size(); ++i) {
    const IrqFdKernelOps::Registration& r = arming_[i];
    if (failed != arm_failed_.end() && *failed == i) [[unlikely]] {
      ++failed;
      table_.Remove(r.gsi);  // never leave an entry the route does not know it has
      continue;
    }
    Slot& slot = slots_[r.gsi];
    slot.armed = true;
    slot.armed_resample_fd = r.resample_fd;
  }
  if (!arm_failed_.empty()) {
    if (Status s = Push(); !s) ReportLocked(s.error());
  }
  return result;
}

void KernelIrqFdCore::Shutdown() {
  std::lock_guard lock(mu_);
  alive_ = false;
}

void KernelIrqFdCore::SetErrorHandler(IrqFd::ErrorHandler handler) {
  std::lock_guard lock(mu_);
  on_error_ = std::move(handler);
}

void KernelIrqFdCore::Report(const Error& error) {
  std::lock_guard lock(mu_);
  ReportLocked(error);
}

void KernelIrqFdCore::ReportLocked(const Error& error) {
  if (on_error_) {
    on_error_(error);
  } else {
    std::fprintf(stderr, "virt: %s\n", error.Message().c_str());
  }
}

uint64_t KernelIrqFdCore::push_count() {
  std::lock_guard lock(mu_);
  return table_.push_count();
}

uint32_t KernelIrqFdCore::allocated_gsis() {
  std::lock_guard lock(mu_);
  return gsis_.allocated();
}

}  // namespace virt
