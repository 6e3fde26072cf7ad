// Event on Windows: a manual-reset event object plus a 64-bit counter, giving eventfd semantics.
//
// Invariant (kept under the lock): the event object is signalled exactly while the counter is
// non-zero, or while a SetEvent made straight on native_handle() by someone else (a WHP doorbell)
// is pending, which a drain counts as one signal. Signal adds to the counter and sets the event; a drain takes the whole counter and
// resets the event, so several signals before a wait coalesce into one wake-up, and a waiter on
// native_handle() (WaitForSingleObject, a poller) sees the same readiness as Wait/TryWait.
// While a sink is set, Signal hands its count to the sink under the same lock and the counter
// (hence the event object) stays as it is.
#include "virt/event.h"

#include <windows.h>

#include <mutex>
#include <utility>

namespace virt {

struct Event::State {
  HANDLE handle = nullptr;
  std::mutex lock;
  uint64_t count = 0;  // guarded by lock
  Sink sink;           // guarded by lock

  ~State() {
    if (handle != nullptr) ::CloseHandle(handle);
  }
};

namespace {

// eventfd's largest counter value; Signal refuses to go past it, as eventfd does.
constexpr uint64_t kMaxCount = UINT64_MAX - 1;

Error LastError(const char* op) {
  Error error = Error::Make(ErrorCode::kNative, op);
  error.domain = NativeDomain::kHresult;
  error.native_code = static_cast<int64_t>(static_cast<uint32_t>(HRESULT_FROM_WIN32(::GetLastError())));
  return error;
}

}  // namespace

Result<Event> Event::Create() {
  // Manual reset, initially not signalled, unnamed.
  HANDLE handle = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (handle == nullptr) return LastError("CreateEventW");
  auto* state = new State;
  state->handle = handle;
  return Event(state);
}

Result<Event> Event::CreateWithSink() {
  // Every Windows Event already serialises on its lock, so any Event can take a sink.
  return Create();
}

Event::Event(Event&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    delete state_;
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

Event::~Event() { delete state_; }

Event::NativeHandle Event::native_handle() const {
  return state_ != nullptr ? state_->handle : nullptr;
}

Status Event::Signal(uint64_t count) const {
  if (count == 0) return Error::Make(ErrorCode::kInvalidArgument, "Event::Signal", "count is 0");
  if (state_ == nullptr) {
    return Error::Make(ErrorCode::kFailedPrecondition, "Event::Signal", "empty event");
  }
  if (count > kMaxCount) {
    return Error::Make(ErrorCode::kInvalidArgument, "Event::Signal",
                       "count is above the eventfd limit 0xfffffffffffffffe");
  }
  std::lock_guard guard(state_->lock);
  if (state_->sink) return state_->sink(count);
  if (state_->count > kMaxCount - count) {
    return Error::Make(ErrorCode::kExhausted, "Event::Signal", "the counter would overflow");
  }
  if (state_->count == 0) {
    // A pending SetEvent made straight on the handle is one signal of its own: keep it.
    if (::WaitForSingleObject(state_->handle, 0) == WAIT_OBJECT_0) {
      if (count > kMaxCount - 1) {
        return Error::Make(ErrorCode::kExhausted, "Event::Signal", "the counter would overflow");
      }
      state_->count = 1;
    } else if (!::SetEvent(state_->handle)) {
      return LastError("SetEvent");
    }
  }
  state_->count += count;
  return Ok();
}

Status Event::SetSink(Sink sink) const {
  if (state_ == nullptr) {
    return Error::Make(ErrorCode::kFailedPrecondition, "Event::SetSink", "empty event");
  }
  if (!sink) return Error::Make(ErrorCode::kInvalidArgument, "Event::SetSink", "empty sink");
  std::lock_guard guard(state_->lock);
  if (state_->count != 0) {
    // Unsignal first: if that fails nothing has changed. Then hand the pending count over; if
    // the sink refuses it, the count stays and the event is signalled again (the invariant).
    if (!::ResetEvent(state_->handle)) return LastError("ResetEvent");
    if (auto forwarded = sink(state_->count); !forwarded) {
      (void)::SetEvent(state_->handle);
      return forwarded;
    }
    state_->count = 0;
  }
  state_->sink = std::move(sink);
  return Ok();
}

void Event::ClearSink() const {
  if (state_ == nullptr) return;
  std::lock_guard guard(state_->lock);
  state_->sink = nullptr;
}

Result<uint64_t> Event::TryWait() const {
  if (state_ == nullptr) {
    return Error::Make(ErrorCode::kFailedPrecondition, "Event::TryWait", "empty event");
  }
  std::lock_guard guard(state_->lock);
  if (state_->count == 0) {
    // A SetEvent straight on the handle (a WHP doorbell, another process) carries no count: it
    // is one signal, as a write(2) of 1 to an eventfd would be. Several coalesce.
    if (::WaitForSingleObject(state_->handle, 0) != WAIT_OBJECT_0) return uint64_t{0};
    if (!::ResetEvent(state_->handle)) return LastError("ResetEvent");
    return uint64_t{1};
  }
  if (!::ResetEvent(state_->handle)) return LastError("ResetEvent");
  return std::exchange(state_->count, 0);
}

Result<uint64_t> Event::Wait(std::chrono::milliseconds timeout) const {
  if (state_ == nullptr) {
    return Error::Make(ErrorCode::kFailedPrecondition, "Event::Wait", "empty event");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto drained = TryWait();
    if (!drained || *drained != 0) return drained;
    // Round up, and re-check the clock after every wake-up: a wait may end a little early (timer
    // granularity), and a timed-out Wait must have waited the whole timeout.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && timeout.count() >= 0) return uint64_t{0};
    const DWORD ms = timeout.count() < 0 ? INFINITE
                     : left.count() >= static_cast<int64_t>(INFINITE)
                         ? INFINITE - 1
                         : static_cast<DWORD>(left.count());
    const DWORD rc = ::WaitForSingleObject(state_->handle, ms);
    if (rc == WAIT_FAILED) return LastError("WaitForSingleObject");
  }
}

}  // namespace virt
