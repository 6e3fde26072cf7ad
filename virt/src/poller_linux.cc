// Poller on Linux: one epoll instance, pooled watch records found by id, per-watch locks.
#include "virt/poller.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <limits>
#include <mutex>
#include <string>
#include <vector>
#include <utility>

#include "light_mutex.h"

namespace virt {
namespace {

// epoll_event.data of the internal wake eventfd; watch ids are never 0.
constexpr uint64_t kWakeId = 0;
// Events fetched per epoll_wait; more ready events are simply picked up by the next Wait.
constexpr int kBatch = 64;

// Watch records live in chunks that are never freed while the poller lives, so Wait can go from
// a reported id to its record with no lock and no lookup table: the id's low kIndexBits bits
// index the record, the high bits are the record's generation (bumped each time the record is
// reused, so a stale report or a stale Remove never matches a newer watch). An id repeats only
// after one record has been reused 2^44 times.
constexpr uint32_t kIndexBits = 20;
constexpr uint32_t kChunkBits = 8;
constexpr uint32_t kChunkSize = 1u << kChunkBits;                 // records per chunk
constexpr uint32_t kMaxChunks = 1u << (kIndexBits - kChunkBits);  // 2^20 watches at a time
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;

struct Watch {
  // Held while the callback runs and while Remove detaches the watch. A LightMutex: every
  // dispatch takes it once, and std::mutex's lock and unlock calls were ~55 instructions of
  // each user-mode irqfd dispatch.
  LightMutex mu;
  uint64_t id = 0;  // guarded by mu: the live watch's id; 0 once removed (or never used)
  int fd = -1;      // guarded by mu
  Poller::Callback callback;  // guarded by mu
  uint64_t generation = 0;    // guarded by Poller::Impl::mu
};

// The watch whose callback this thread is running, so Remove from inside it does not deadlock.
thread_local const Watch* tls_running = nullptr;

// epoll_wait's failure (nothing ran on EINTR), out of line: the error stays off Wait's frame.
[[gnu::cold, gnu::noinline]] Result<size_t> WaitFailed(int err) {
  if (err == EINTR) return size_t{0};
  return Error::Errno("epoll_wait", err);
}

}  // namespace

struct Poller::Impl {
  ~Impl() {
    if (epoll_fd >= 0) ::close(epoll_fd);
    for (auto& chunk : chunks) delete[] chunk.load(std::memory_order_relaxed);
  }

  // The record an id names, or nullptr when no record was ever made there. No lock: chunks are
  // published (release) before any id naming them exists, and never freed before ~Impl.
  Watch* Record(uint64_t id) const {
    const uint64_t index = id & kIndexMask;
    Watch* chunk = chunks[index >> kChunkBits].load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : &chunk[index & (kChunkSize - 1)];
  }

  // A free record's index and its new generation; kExhausted when 2^20 watches exist.
  Result<uint64_t> TakeRecord() {
    std::lock_guard lock(mu);
    uint32_t index;
    if (!free_records.empty()) {
      index = free_records.back();
      free_records.pop_back();
    } else {
      if (records == kMaxChunks * kChunkSize) {
        return Error::Make(ErrorCode::kExhausted, "Poller::Add",
                           "2^20 watches exist already");
      }
      index = records++;
      std::atomic<Watch*>& chunk = chunks[index >> kChunkBits];
      if (chunk.load(std::memory_order_relaxed) == nullptr) {
        chunk.store(new Watch[kChunkSize], std::memory_order_release);
      }
    }
    Watch* w = Record(index);
    ++watches;
    return (++w->generation << kIndexBits) | index;
  }

  void ReturnRecord(uint64_t id) {
    std::lock_guard lock(mu);
    free_records.push_back(static_cast<uint32_t>(id & kIndexMask));
    --watches;
  }

  int epoll_fd = -1;
  Event wake;
  std::array<std::atomic<Watch*>, kMaxChunks> chunks{};
  mutable std::mutex mu;  // guards the fields below and the records' generations
  uint32_t records = 0;   // records made so far (all chunks below records / kChunkSize exist)
  std::vector<uint32_t> free_records;
  size_t watches = 0;
};

Result<Poller> Poller::Create() {
  auto impl = std::make_unique<Impl>();
  impl->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (impl->epoll_fd < 0) return Error::Errno("epoll_create1", errno);
  auto wake = Event::Create();
  if (!wake) return wake.error();
  impl->wake = std::move(*wake);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (::epoll_ctl(impl->epoll_fd, EPOLL_CTL_ADD, impl->wake.native_handle(), &ev) != 0) {
    return Error::Errno("epoll_ctl(EPOLL_CTL_ADD)", errno, "wake event");
  }
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
  auto id = impl_->TakeRecord();
  if (!id) return id.error();
  Watch* watch = impl_->Record(*id);
  {
    // Filled in before the event is registered, so the first report already finds it.
    std::lock_guard lock(watch->mu);
    watch->id = *id;
    watch->fd = event.native_handle();
    watch->callback = std::move(callback);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = *id;
  if (::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, event.native_handle(), &ev) != 0) {
    const int err = errno;
    Callback dead;
    {
      std::lock_guard lock(watch->mu);
      watch->id = 0;
      dead = std::move(watch->callback);
    }
    impl_->ReturnRecord(*id);
    return Error::Errno("epoll_ctl(EPOLL_CTL_ADD)", err);
  }
  return *id;
}

Status Poller::Remove(WatchId id) {
  Watch* watch = id == kWakeId ? nullptr : impl_->Record(id);
  if (watch == nullptr) {
    return Error::Make(ErrorCode::kNotFound, "Poller::Remove", "no watch " + std::to_string(id));
  }
  // Detach while holding the watch's lock: a callback running now finishes first, and the event
  // is unregistered before the caller may close it or watch it again.
  const bool own = tls_running == watch;  // called from this watch's callback: lock held
  std::unique_lock<LightMutex> lock(watch->mu, std::defer_lock);
  if (!own) lock.lock();
  if (watch->id != id) {
    return Error::Make(ErrorCode::kNotFound, "Poller::Remove", "no watch " + std::to_string(id));
  }
  watch->id = 0;  // from here on, reports of this id are ignored
  const int detached = ::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_DEL, watch->fd, nullptr);
  const int err = errno;
  if (own) {
    // The callback is running (it called us): Wait destroys it and frees the record after it
    // returns, so an Add from the rest of this callback cannot get this record.
    if (detached != 0) return Error::Errno("epoll_ctl(EPOLL_CTL_DEL)", err);
    return Ok();
  }
  Callback dead = std::move(watch->callback);
  lock.unlock();
  impl_->ReturnRecord(id);
  if (detached != 0) return Error::Errno("epoll_ctl(EPOLL_CTL_DEL)", err);
  return Ok();
}

Result<size_t> Poller::Wait(std::chrono::milliseconds timeout) {
  std::array<epoll_event, kBatch> events;
  const int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<int64_t>(
                                                timeout.count(), std::numeric_limits<int>::max()));
  const int n = ::epoll_wait(impl_->epoll_fd, events.data(), kBatch, ms);
  if (n < 0) [[unlikely]] return WaitFailed(errno);
  size_t ran = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[static_cast<size_t>(i)].data.u64;
    if (id == kWakeId) {
      (void)impl_->wake.TryWait();  // nothing to do if this fails: the wake was seen
      continue;
    }
    Watch* watch = impl_->Record(id);
    if (watch == nullptr) continue;
    std::unique_lock lock(watch->mu);
    if (watch->id != id) continue;  // removed (and maybe reused) after epoll_wait reported it
    const Watch* outer = std::exchange(tls_running, watch);
    watch->callback();
    tls_running = outer;
    ++ran;
    if (watch->id != id) {
      // The callback removed its own watch; Remove left the record to us.
      Callback dead = std::move(watch->callback);
      lock.unlock();
      impl_->ReturnRecord(id);
    }
  }
  return ran;
}

Status Poller::Wake() { return impl_->wake.Signal(); }

size_t Poller::watch_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->watches;
}

}  // namespace virt
