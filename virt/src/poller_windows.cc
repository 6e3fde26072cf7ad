// Poller on Windows: one I/O completion port fed by one-shot thread-pool waits, one per watch.
//
// Each live watch owns exactly one "token" at any time: its thread-pool wait is armed, or the
// wait's callback is posting, or a completion packet keyed by the watch id sits in the port, or
// a Wait thread is running the watch's callback. Wait dequeues a packet, runs the callback under
// the watch's mutex and hands the token back (re-arms), so an undrained event is reported again
// (level-triggered) and one watch's callback never runs on two threads at once. Thread-pool
// waits are not limited to 64 handles (the pool spreads them over wait threads) and exist under
// Wine, which lacks NtAssociateWaitCompletionPacket.
//
// Each wait sits alone in its own cleanup group, torn down with CloseThreadpoolCleanupGroupMembers
// rather than SetThreadpoolWait(nullptr) + WaitForThreadpoolWaitCallbacks + CloseThreadpoolWait:
// under Wine a wait thread that saw the event signalled just before the disarm may still queue a
// callback after WaitForThreadpoolWaitCallbacks returned (its wait threads only check that the
// wait is not yet closed), which would then run on a freed Watch. Closing the group's members
// unregisters the wait first, then cancels and waits for its callbacks, on Windows and Wine.
#include "virt/poller.h"

#include <windows.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace virt {
namespace {

using namespace std::chrono_literals;

// Completion key of Wake's packet; watch ids start at 1.
constexpr ULONG_PTR kWakeKey = 0;
// Packets fetched per GetQueuedCompletionStatusEx; the rest wait for the next Wait.
constexpr ULONG kBatch = 64;

static_assert(sizeof(ULONG_PTR) >= sizeof(Poller::WatchId), "a completion key carries a watch id");

HRESULT LastHresult() { return HRESULT_FROM_WIN32(::GetLastError()); }

Error HresultError(const char* op, HRESULT hr, std::string detail = {}) {
  Error error = Error::Make(ErrorCode::kNative, op, std::move(detail));
  error.domain = NativeDomain::kHresult;
  error.native_code = static_cast<int64_t>(static_cast<uint32_t>(hr));
  return error;
}

// The completion port, and the first failure of a thread-pool callback to post to it (such a
// watch has lost its token, so the poller is unusable: the next Wait to start says so).
struct Port {
  ~Port() {
    if (handle != nullptr) ::CloseHandle(handle);
  }

  HANDLE handle = nullptr;
  std::atomic<HRESULT> post_failure{S_OK};
};

struct Watch {
  Watch(Port& watch_port, uint64_t watch_id, HANDLE watch_event, Poller::Callback cb)
      : port(watch_port), id(watch_id), event(watch_event), callback(std::move(cb)) {}

  Port& port;
  const uint64_t id;
  const HANDLE event;
  const Poller::Callback callback;
  // `group` holds `wait` only; both are made before the watch is listed, closed by Detach.
  PTP_CLEANUP_GROUP group = nullptr;
  PTP_WAIT wait = nullptr;
  std::mutex mu;         // held while the callback runs, while re-arming and while detaching
  bool removed = false;  // guarded by mu
};

// The watch whose callback this thread is running, so Remove from inside it does not deadlock.
thread_local const Watch* tls_running = nullptr;

// Thread-pool callback: the watch's event is signalled; hand the token to the port. Takes no
// lock, so Detach may wait for it while holding the watch's mutex.
void CALLBACK OnEventSignalled(PTP_CALLBACK_INSTANCE, void* context, PTP_WAIT, TP_WAIT_RESULT) {
  auto* watch = static_cast<Watch*>(context);
  if (!::PostQueuedCompletionStatus(watch->port.handle, 0, watch->id, nullptr)) {
    HRESULT expected = S_OK;
    watch->port.post_failure.compare_exchange_strong(expected, LastHresult());
  }
}

// Gives the watch its token back; call with watch.mu held and watch.removed false. A signalled
// event is posted at once, so the next Wait sees it without a round trip through the pool
// (Add reports a pending count right away, a callback that leaves the count is called again);
// otherwise the one-shot thread-pool wait is armed. Cannot fail: when posting does, the armed
// wait fires at once and its callback posts (or records the failure for Wait).
void Arm(Watch& watch) {
  if (::WaitForSingleObject(watch.event, 0) == WAIT_OBJECT_0 &&
      ::PostQueuedCompletionStatus(watch.port.handle, 0, watch.id, nullptr)) {
    return;
  }
  ::SetThreadpoolWait(watch.wait, watch.event, nullptr);
}

// Creates the watch's cleanup group and its unarmed thread-pool wait (CreateThreadpoolWait).
Status CreateWait(Watch& watch) {
  watch.group = ::CreateThreadpoolCleanupGroup();
  if (watch.group == nullptr) return HresultError("CreateThreadpoolCleanupGroup", LastHresult());
  TP_CALLBACK_ENVIRON environment;
  ::InitializeThreadpoolEnvironment(&environment);
  ::SetThreadpoolCallbackCleanupGroup(&environment, watch.group, nullptr);
  watch.wait = ::CreateThreadpoolWait(&OnEventSignalled, &watch, &environment);
  const HRESULT hr = LastHresult();
  ::DestroyThreadpoolEnvironment(&environment);
  if (watch.wait == nullptr) {
    ::CloseThreadpoolCleanupGroup(watch.group);
    watch.group = nullptr;
    return HresultError("CreateThreadpoolWait", hr);
  }
  return Ok();
}

// Stops the thread-pool wait for good: disarm, then close the group's members, which
// unregisters the wait, cancels a queued callback and waits for a running one (it takes no
// lock), and closes the wait. Never call it from inside OnEventSignalled.
void Detach(Watch& watch) {
  if (watch.group == nullptr) return;
  ::SetThreadpoolWait(watch.wait, nullptr, nullptr);
  ::CloseThreadpoolCleanupGroupMembers(watch.group, TRUE, nullptr);
  ::CloseThreadpoolCleanupGroup(watch.group);
  watch.wait = nullptr;
  watch.group = nullptr;
}

}  // namespace

struct Poller::Impl {
  // The Poller is not destroyed while a thread is inside it, so no watch callback runs; pool
  // callbacks may, and each Detach waits for its own before the port closes.
  ~Impl() {
    for (auto& [id, watch] : watches) {
      std::lock_guard lock(watch->mu);
      watch->removed = true;
      Detach(*watch);
    }
  }

  std::shared_ptr<Watch> Find(uint64_t id) {
    std::lock_guard lock(mu);
    auto it = watches.find(id);
    return it == watches.end() ? nullptr : it->second;
  }

  // Handles dequeued packets: runs the callbacks of live watches and re-arms them. Sets `woken`
  // when one was Wake's. Returns the number of callbacks run.
  size_t Run(const OVERLAPPED_ENTRY* entries, ULONG n, bool& woken) {
    size_t ran = 0;
    for (ULONG i = 0; i < n; ++i) {
      const ULONG_PTR key = entries[i].lpCompletionKey;
      if (key == kWakeKey) {
        // An exchange, not a store: it reads a coalesced Wake's write, so whatever that Wake's
        // caller did before (UserModeIrqFd sets its stop flag) is visible once Wait returns.
        (void)wake_posted.exchange(false);  // later Wakes post again
        woken = true;
        continue;
      }
      std::shared_ptr<Watch> watch = Find(key);
      if (!watch) continue;  // removed after the packet was posted
      std::lock_guard lock(watch->mu);
      if (watch->removed) continue;  // removed while this thread waited for the lock
      const Watch* outer = std::exchange(tls_running, watch.get());
      watch->callback();
      tls_running = outer;
      ++ran;
      if (!watch->removed) Arm(*watch);  // unless the callback removed its own watch
    }
    return ran;
  }

  Port port;  // declared first: closed after every watch is detached
  std::atomic<bool> wake_posted{false};  // a wake packet is in the port
  mutable std::mutex mu;  // guards next_id, watches and events; never held while a callback runs
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::shared_ptr<Watch>> watches;
  std::unordered_map<HANDLE, uint64_t> events;  // watched event handle -> watch id
};

Result<Poller> Poller::Create() {
  auto impl = std::make_unique<Impl>();
  // A new port, not associated with any file; one thread may run it at a time per CPU (0), which
  // only matters for packets of I/O, not for these posted ones.
  impl->port.handle = ::CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  if (impl->port.handle == nullptr) return HresultError("CreateIoCompletionPort", LastHresult());
  return Poller(std::move(impl));
}

Poller::Poller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Poller::Poller(Poller&& other) noexcept = default;
Poller& Poller::operator=(Poller&& other) noexcept = default;
Poller::~Poller() = default;

Result<Poller::WatchId> Poller::Add(const Event& event, Callback callback) {
  if (!event.valid() || !callback) {
    return Error::Make(ErrorCode::kInvalidArgument, "Poller::Add",
                       event.valid() ? "empty callback" : "empty event");
  }
  const HANDLE handle = event.native_handle();
  std::shared_ptr<Watch> watch;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->events.contains(handle)) {
      return HresultError("Poller::Add", HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS),
                          "the event is already watched");
    }
    watch = std::make_shared<Watch>(impl_->port, impl_->next_id++, handle, std::move(callback));
    if (Status created = CreateWait(*watch); !created) return created.error();
    // Listed before it is armed, so the first report already finds it.
    impl_->watches.emplace(watch->id, watch);
    impl_->events.emplace(handle, watch->id);
  }
  // Armed under the watch's lock: a Remove of this id that got in first has detached it, and a
  // Wait that dequeues the first report waits for the arming to finish before it re-arms.
  std::lock_guard lock(watch->mu);
  if (!watch->removed) Arm(*watch);
  return watch->id;
}

Status Poller::Remove(WatchId id) {
  std::shared_ptr<Watch> watch;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->watches.find(id);
    if (it == impl_->watches.end()) {
      return Error::Make(ErrorCode::kNotFound, "Poller::Remove",
                         "no watch " + std::to_string(id));
    }
    watch = std::move(it->second);
    impl_->watches.erase(it);  // from here on, packets for this id are dropped
    impl_->events.erase(watch->event);
  }
  // Detach holding the watch's lock: a callback running now finishes first, a Wait that
  // dequeued a packet of this id sees `removed` and neither runs the callback nor re-arms, and
  // the pool no longer waits on the event once this returns (the caller may close it).
  std::unique_lock<std::mutex> lock(watch->mu, std::defer_lock);
  if (tls_running != watch.get()) lock.lock();  // else this thread already holds it
  watch->removed = true;
  Detach(*watch);
  return Ok();
}

Result<size_t> Poller::Wait(std::chrono::milliseconds timeout) {
  const bool forever = timeout.count() < 0;
  const auto deadline = std::chrono::steady_clock::now() + (forever ? 0ms : timeout);
  std::array<OVERLAPPED_ENTRY, kBatch> entries;
  for (;;) {
    if (HRESULT failure = impl_->port.post_failure.load(); failure != S_OK) {
      return HresultError("PostQueuedCompletionStatus", failure, "a watch lost its report");
    }
    DWORD ms = INFINITE;
    if (!forever) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      ms = static_cast<DWORD>(std::clamp<int64_t>(left.count(), 0, int64_t{INFINITE} - 1));
    }
    ULONG n = 0;
    if (!::GetQueuedCompletionStatusEx(impl_->port.handle, entries.data(), kBatch, &n, ms,
                                       FALSE)) {
      const DWORD err = ::GetLastError();
      if (err == WAIT_TIMEOUT) return size_t{0};
      return HresultError("GetQueuedCompletionStatusEx", HRESULT_FROM_WIN32(err));
    }
    bool woken = false;
    const size_t ran = impl_->Run(entries.data(), n, woken);
    if (ran > 0 || woken) return ran;
    // Only packets of watches removed since they were posted, which epoll would never have
    // reported: they are no reason to return early.
    if (!forever && std::chrono::steady_clock::now() >= deadline) return size_t{0};
  }
}

Status Poller::Wake() {
  if (impl_->wake_posted.exchange(true)) return Ok();  // coalesces with the packet in the port
  if (!::PostQueuedCompletionStatus(impl_->port.handle, 0, kWakeKey, nullptr)) {
    const HRESULT hr = LastHresult();
    impl_->wake_posted.store(false);
    return HresultError("PostQueuedCompletionStatus", hr, "wake");
  }
  return Ok();
}

size_t Poller::watch_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->watches.size();
}

}  // namespace virt
