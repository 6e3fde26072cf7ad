// UserModeIrqFdCore: GSIs, per-route MSIs and poller watches shared by a UserModeIrqFd and its routes.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "virt/gsi_table.h"
#include "virt/poller.h"
#include "virt/user_mode_irqfd.h"

namespace virt {

// State shared by the IrqFd, its dispatcher thread and every route; routes keep it alive, so a
// route that outlives the IrqFd finds alive_ == false instead of freed memory.
//
// Locking: mu_ guards the GSI table, the slots' watches and sinks, alive_ and batch_depth_, and
// serialises every write of a slot's MSI; the MSI is published through a seqlock (PublishedMsi)
// so that a dispatch and msi() read it without mu_. mu_ is never held while calling into the
// poller (Remove waits for a running dispatch, and a dispatch takes mu_). Calls
// for one route are serialised by that route's own lock, so a slot changes under one caller at
// a time. Lock order: poller watch lock -> mu_ -> a route event's sink lock (SetSink and
// ClearSink are called under mu_; a sink, DirectInject, never takes mu_); handler_mu_ is a leaf.
//
// Direct signals: while a route is enabled its event's sink is DirectInject, set after the
// watch exists and taken away (ClearSink waits for a running sink) before its MSI is cleared,
// so a sink always finds an MSI, and every sink is gone before Shutdown drops the injector.
class UserModeIrqFdCore {
 public:
  UserModeIrqFdCore(Poller poller, GsiTable gsis, UserModeIrqFd::Injector injector,
                    bool direct_signals);

  // Route events are made with Event::CreateWithSink when true.
  bool direct_signals() const { return direct_; }

  Result<Gsi> AllocateGsi();
  Result<Gsi> AllocateGsiAt(Gsi gsi);
  Result<std::vector<RouteState>> Routes();
  // Sets the MSI; on the masked -> enabled edge, starts watching `event` (which must stay open
  // until ClearMsi/Drop returns).
  Status SetMsi(Gsi gsi, const Event& event, const MsiMessage& msi);
  // Masks: stops watching, so signals stay pending on the event.
  Status ClearMsi(Gsi gsi);
  // Full teardown: stop watching (waiting for a dispatch of this route), then free the GSI.
  Status Drop(Gsi gsi);
  // Lock-free (see PublishedMsi). nullopt when masked, and for every route after Shutdown (which
  // clears every slot's MSI under mu_, after which no SetMsi stores one). Inline: a dispatch
  // reads it twice.
  std::optional<MsiMessage> CurrentMsi(Gsi gsi) const { return slots_[gsi].msi.Load(); }

  void BeginBatch();
  Status EndBatch();

  // The dispatcher thread's body: Poller::Wait until StopDispatcher.
  void RunDispatcher();
  void StopDispatcher();
  // True on the thread running RunDispatcher (where the error handler and injector run).
  bool OnDispatcherThread() const;
  // After the dispatcher is joined: every call fails with kPartitionGone from now on, every
  // watch is removed and the injector is released.
  void Shutdown();

  void SetErrorHandler(IrqFd::ErrorHandler handler);
  // Sends `error` to the handler (stderr when none). Takes no lock but handler_mu_.
  void Report(const Error& error);
  uint64_t injected_count() const {
    return injected_.load(std::memory_order_relaxed) +
           injected_direct_.load(std::memory_order_relaxed);
  }

 private:
  // A route's MSI (or none), written under mu_ by one writer at a time and read by any thread
  // without a lock: a seqlock. Store makes the sequence odd, writes the fields, makes it even
  // again; Load retries until it read the same even sequence before and after the fields. Every
  // field is an atomic, so there is no data race at all, and no standalone fence (which TSan
  // does not model). The ordering: each field store is a release, so a reader whose acquire
  // load of a field sees a new value also sees the odd sequence stored before it, and its
  // second sequence load (after that acquire) cannot read the old even value; the final
  // release store of the even sequence, read by the reader's first acquire load, makes every
  // field of that Store visible. So a Load that saw equal even sequences read one Store's
  // fields, never a mix. (On x86 all of these are plain moves.)
  class PublishedMsi {
   public:
    void Store(const std::optional<MsiMessage>& msi);
    std::optional<MsiMessage> Load() const {
      for (;;) {
        const uint32_t before = seq_.load(std::memory_order_acquire);
        if ((before & 1) == 0) [[likely]] {
          const uint64_t address = address_.load(std::memory_order_acquire);
          const uint32_t data = data_.load(std::memory_order_acquire);
          const bool present = present_.load(std::memory_order_acquire);
          if (seq_.load(std::memory_order_relaxed) == before) [[likely]] {
            if (!present) return std::nullopt;
            return MsiMessage{address, data};
          }
        }
        WaitForStore();
      }
    }

   private:
    static void WaitForStore();  // yields: a Store is a few instructions under mu_

    std::atomic<uint32_t> seq_{0};  // odd while a Store is under way
    std::atomic<uint64_t> address_{0};
    std::atomic<uint32_t> data_{0};
    std::atomic<bool> present_{false};
  };

  struct Slot {
    PublishedMsi msi;           // what a dispatch injects; none while masked
    Poller::WatchId watch = 0;  // 0 when the event is not watched; guarded by mu_
    const Event* sink_event = nullptr;  // the event whose sink is set, if any; guarded by mu_
  };

  Status CheckAlive(const char* op) const;
  // Poller callback of route `gsi`: drain `event`, then inject the slot's MSI as it is after the
  // drain (the one before it if masking began meanwhile).
  void Dispatch(Gsi gsi, const Event& event);
  // A direct signal of route `gsi` (its event's sink): injects its MSI on the calling thread.
  Status DirectInject(Gsi gsi);
  // Makes DirectInject the sink of `event` (route `gsi`, enabled and watched), under mu_. Fails
  // only when injecting a count already pending failed: the route then has no sink.
  Status SetSinkLocked(Slot& slot, Gsi gsi, const Event& event);
  // Takes the sink of `slot` away, if it has one (under mu_).
  static void ClearSinkLocked(Slot& slot);

  Poller poller_;  // thread-safe on its own
  std::mutex mu_;
  bool alive_ = true;
  GsiTable gsis_;
  std::vector<Slot> slots_;  // indexed by GSI
  uint32_t batch_depth_ = 0;

  // Used by the dispatcher thread and by direct signals' sinks; reset by Shutdown once that
  // thread is joined and every sink is cleared.
  UserModeIrqFd::Injector inject_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> injected_{0};  // written by the dispatcher thread only
  std::atomic<uint64_t> injected_direct_{0};  // by signalling threads (read-modify-write)
  const bool direct_;

  std::mutex handler_mu_;
  IrqFd::ErrorHandler on_error_;  // guarded by handler_mu_
};

}  // namespace virt
