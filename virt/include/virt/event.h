// Event: a counting wake-up object (eventfd on Linux, an event object + counter on Windows), used
// as the irqfd trigger.
#pragma once

#include <chrono>
#include <cstdint>

#include "virt/result.h"

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

  // eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
  static Result<Event> Create();

  Event() = default;
  Event(Event&& other) noexcept;
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event();

#ifdef _WIN32
  bool valid() const { return state_ != nullptr; }
#else
  bool valid() const { return fd_ >= 0; }
#endif

  // Adds `count` (> 0) to the counter, waking a waiter. write(2) on the eventfd.
  Status Signal(uint64_t count = 1) const;

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
  // Heap state (HANDLE, lock, counter) so that a move transfers the pending count with the handle.
  struct State;
  explicit Event(State* state) : state_(state) {}
  State* state_ = nullptr;
#else
  explicit Event(int fd) : fd_(fd) {}
  int fd_ = -1;
#endif
};

static_assert(!std::is_copy_constructible_v<Event>);
static_assert(std::is_nothrow_destructible_v<Event>);

}  // namespace virt
