// Poller: waits on many Events at once and runs a callback for each one that is signalled.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "virt/event.h"
#include "virt/result.h"

namespace virt {

// Watches Events. On Linux one epoll instance; on Windows one I/O completion port fed by a
// one-shot thread-pool wait per watch (a signalled event posts a packet keyed by the watch id,
// Wait dequeues it, runs the callback and re-arms the wait), which also runs under Wine. Not
// limited in the number of watches (no 64-handle WaitForMultipleObjects limit). Move-only;
// thread-safe except that the Poller must not be moved or destroyed while a thread is inside any
// of its calls.
//
// Readiness is level-triggered: a watch whose event has a non-zero count is reported by every
// Wait until a callback drains it (Event::TryWait), so a callback that leaves the count alone
// is called again at once. (On Windows a new signal reaches the port through the thread pool,
// so a Wait with a zero timeout may miss one made a moment before; but a count already pending
// when Add is called, or left by a callback, is queued by the time Add / that Wait returns, so
// the next Wait sees it even with a zero timeout.)
//
// Removal guarantee: each watch has its own mutex. Wait looks a reported watch up by id and runs
// its callback holding that mutex; Remove first unlists the id (later reports of it are
// ignored), then takes the same mutex (so it waits for a running callback to finish), marks the
// watch removed and detaches the event (epoll_ctl DEL; on Windows unregisters and closes the
// thread-pool wait, cancelling and waiting for its callback), still holding it. Hence once
// Remove returns, the callback is not running and is never invoked again, and the event is no
// longer registered.
class Poller {
 public:
  using Callback = std::function<void()>;
  // Identifies a watch; never reused within one Poller. 0 is never a valid id.
  using WatchId = uint64_t;

  // epoll_create1(EPOLL_CLOEXEC) plus an internal eventfd for Wake(); on Windows
  // CreateIoCompletionPort (Wake posts a packet).
  static Result<Poller> Create();

  Poller(Poller&& other) noexcept;
  Poller& operator=(Poller&& other) noexcept;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;
  ~Poller();

  // Starts watching `event` (epoll_ctl EPOLL_CTL_ADD; on Windows CreateThreadpoolCleanupGroup +
  // CreateThreadpoolWait + SetThreadpoolWait): `callback` runs on a thread inside Wait whenever
  // the event's count is non-zero. Allowed while another thread waits; a pending count is
  // reported right away. The event must stay open until Remove returns. An event may be watched
  // once per poller at a time (a second Add fails with kNative: errno EEXIST on Linux,
  // HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS) on Windows). kInvalidArgument for an empty event or
  // callback.
  Result<WatchId> Add(const Event& event, Callback callback);

  // Stops watching (epoll_ctl EPOLL_CTL_DEL; on Windows SetThreadpoolWait(nullptr) +
  // CloseThreadpoolCleanupGroupMembers of the wait's own cleanup group, which also waits for its
  // thread-pool callback). Blocks while the watch's callback runs on another thread, so do not
  // call it holding a lock that callback takes. May be called from inside any callback,
  // including the watch's own (then it does not block; the callback just finishes).
  // Callbacks running on two threads must not remove each other's watches (each would wait for
  // the other). kNotFound for an unknown or already removed id. When the detach itself fails
  // (Linux; the Windows calls cannot fail) the watch is still removed (its callback never runs
  // again) and the error is returned.
  Status Remove(WatchId id);

  // Waits up to `timeout` (negative: forever) for signalled events and runs their callbacks on
  // this thread, one at a time. Returns the number of callbacks run: 0 on timeout, after Wake()
  // or on EINTR. Fails only when the poller is unusable: waiting itself fails (epoll_wait,
  // GetQueuedCompletionStatusEx), or on Windows a thread-pool wait could not post its report
  // (PostQueuedCompletionStatus), which the next Wait returns.
  Result<size_t> Wait(std::chrono::milliseconds timeout);

  // Makes the current Wait (or, if none is running, the next one) return promptly. Wakes
  // coalesce like Event signals; one wake ends one Wait, so threads that share a poller wake each
  // other in turn to all stop. Safe from any thread, including from a callback. Writes the wake
  // eventfd; on Windows PostQueuedCompletionStatus unless a wake packet is already queued.
  Status Wake();

  // Number of watches added and not yet removed.
  size_t watch_count() const;

 private:
  struct Impl;
  explicit Poller(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

static_assert(!std::is_copy_constructible_v<Poller>);
static_assert(std::is_nothrow_destructible_v<Poller>);

}  // namespace virt
