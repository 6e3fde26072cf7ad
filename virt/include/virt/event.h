// Event: a counting wake-up object (eventfd on Linux, an event object + counter on Windows), used
// as the irqfd trigger.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "virt/result.h"

#ifndef _WIN32
#include <sys/eventfd.h>
#endif

namespace virt {

// Move-only owner of an eventfd. Signals add to a counter; a wait consumes the whole counter, so
// several signals before a wait coalesce into one wake-up (eventfd semantics).
// Thread-safe: any thread may Signal while another waits.
// On Windows the counter lives next to a manual-reset event object, which is signalled exactly
// while the counter is non-zero; native_handle() is that event object's HANDLE.
class Event {
 public:
#ifdef _WIN32
  using NativeHandle = void*;
#else
  using NativeHandle = int;
#endif

  // Receives the signals of an Event that has a sink set (see SetSink), in place of its counter.
  using Sink = std::function<Status(uint64_t count)>;

  // eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK). On Windows CreateEventW (manual reset). Inline on
  // Linux, so the system call returns straight into the caller's frame: where a system call
  // clobbers the CPU's return predictor (a paravirtualised guest), every function returned
  // through after it costs a mispredict (docs/performance.md, route programming).
  static Result<Event> Create();

  // Create, plus the ability to redirect signals with SetSink. Such an Event serialises Signal,
  // drains and sink changes on one lock (a plain Event's Signal takes no lock on Linux).
  static Result<Event> CreateWithSink();

  Event() = default;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
#ifdef _WIN32
  Event(Event&& other) noexcept;
  ~Event();
#else
  // Inline: every Result<Event> unwrapped leaves a moved-from Event, whose end is one test.
  Event(Event&& other) noexcept : fd_(other.fd_), sink_(other.sink_) {
    other.fd_ = -1;
    other.sink_ = nullptr;
  }
  ~Event() {
    if (fd_ >= 0 || sink_ != nullptr) Close();
  }
#endif

#ifdef _WIN32
  bool valid() const { return state_ != nullptr; }
#else
  bool valid() const { return fd_ >= 0; }
#endif

  // Adds `count` (> 0) to the counter, waking a waiter. write(2) on the eventfd. While a sink
  // is set, calls sink(count) instead and returns its outcome (the counter is left alone).
  Status Signal(uint64_t count = 1) const;

  // Redirects every later Signal to `sink` (non-empty), e.g. to set a WHP trigger's event
  // without a user-mode hop. A count pending on the counter is drained and handed to the sink
  // first, so no signal is lost across the switch; if that call fails, the count is put back,
  // no sink is set and its error is returned. Replaces a sink already set. The sink runs on the
  // signalling thread under the event's lock, so it must not call back into this Event.
  // Only Signal is redirected: writes made straight to native_handle() (another process, a
  // kernel driver; on Windows a SetEvent of the handle, which a drain counts as one signal)
  // still reach the counter. kFailedPrecondition unless made by CreateWithSink.
  Status SetSink(Sink sink) const;

  // Signals go to the counter again. Returns once no sink call is running; the sink is never
  // called after that. A no-op when no sink is set or the event has no sink support.
  void ClearSink() const;

  // Waits up to `timeout` for the counter to be non-zero, then drains it. Returns the drained
  // count, or 0 on timeout. poll(2) + read(2).
  Result<uint64_t> Wait(std::chrono::milliseconds timeout) const;

  // Drains the counter without blocking: the pending count, 0 when nothing was pending.
  Result<uint64_t> TryWait() const;

  // The eventfd, still owned by this Event (pass it to KVM_IRQFD, epoll ...). On Windows the
  // event object's HANDLE (wait on it; signal through Signal so the counter stays right).
#ifdef _WIN32
  NativeHandle native_handle() const;
#else
  NativeHandle native_handle() const { return fd_; }
#endif

 private:
#ifdef _WIN32
  // Heap state (HANDLE, lock, counter, sink) so that a move transfers the pending count with the
  // handle.
  struct State;
  explicit Event(State* state) : state_(state) {}
  State* state_ = nullptr;
#else
  // Only for CreateWithSink: the lock that orders Signal, drains and sink changes, and the sink.
  struct SinkState;
  Event(int fd, SinkState* sink) : fd_(fd), sink_(sink) {}
  static Result<Event> CreateFailed();  // Create's error from errno (cold, out of line)
  void Close() noexcept;  // closes the eventfd, frees the sink state
  int fd_ = -1;
  SinkState* sink_ = nullptr;  // owned
#endif
};

static_assert(!std::is_copy_constructible_v<Event>);
static_assert(std::is_nothrow_destructible_v<Event>);

#ifndef _WIN32
inline Result<Event> Event::Create() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) [[unlikely]] return CreateFailed();
  return Event(fd, nullptr);
}
#endif

}  // namespace virt
