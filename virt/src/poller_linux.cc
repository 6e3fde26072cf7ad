// Poller on Linux: one epoll instance, watches keyed by id, per-watch locks for safe removal.
#include "virt/poller.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace virt {
namespace {

// epoll_event.data of the internal wake eventfd; watch ids start at 1.
constexpr uint64_t kWakeId = 0;
// Events fetched per epoll_wait; more ready events are simply picked up by the next Wait.
constexpr int kBatch = 64;

struct Watch {
  Watch(uint64_t watch_id, int watch_fd, Poller::Callback cb)
      : id(watch_id), fd(watch_fd), callback(std::move(cb)) {}

  const uint64_t id;
  const int fd;
  const Poller::Callback callback;
  std::mutex mu;         // held while the callback runs and while Remove detaches the watch
  bool removed = false;  // guarded by mu
};

// The watch whose callback this thread is running, so Remove from inside it does not deadlock.
thread_local const Watch* tls_running = nullptr;

}  // namespace

struct Poller::Impl {
  ~Impl() {
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  std::shared_ptr<Watch> Find(uint64_t id) {
    std::lock_guard lock(mu);
    auto it = watches.find(id);
    return it == watches.end() ? nullptr : it->second;
  }

  int epoll_fd = -1;
  Event wake;
  mutable std::mutex mu;  // guards next_id and watches; never held while a callback runs
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::shared_ptr<Watch>> watches;
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
  std::shared_ptr<Watch> watch;
  {
    std::lock_guard lock(impl_->mu);
    watch = std::make_shared<Watch>(impl_->next_id++, event.native_handle(), std::move(callback));
    // Listed before it is registered, so the first report already finds it.
    impl_->watches.emplace(watch->id, watch);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = watch->id;
  if (::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_ADD, watch->fd, &ev) != 0) {
    const int err = errno;
    std::lock_guard lock(impl_->mu);
    impl_->watches.erase(watch->id);
    return Error::Errno("epoll_ctl(EPOLL_CTL_ADD)", err);
  }
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
    impl_->watches.erase(it);  // from here on, reports of this id are ignored
  }
  // Detach while holding the watch's lock: a callback running now finishes first, and the event
  // is unregistered before the caller may close it or watch it again.
  std::unique_lock<std::mutex> lock(watch->mu, std::defer_lock);
  if (tls_running != watch.get()) lock.lock();  // else this thread already holds it
  watch->removed = true;
  if (::epoll_ctl(impl_->epoll_fd, EPOLL_CTL_DEL, watch->fd, nullptr) != 0) {
    return Error::Errno("epoll_ctl(EPOLL_CTL_DEL)", errno);
  }
  return Ok();
}

Result<size_t> Poller::Wait(std::chrono::milliseconds timeout) {
  std::array<epoll_event, kBatch> events;
  const int ms = timeout.count() < 0 ? -1 : static_cast<int>(std::min<int64_t>(
                                                timeout.count(), std::numeric_limits<int>::max()));
  const int n = ::epoll_wait(impl_->epoll_fd, events.data(), kBatch, ms);
  if (n < 0) {
    if (errno == EINTR) return size_t{0};
    return Error::Errno("epoll_wait", errno);
  }
  size_t ran = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[static_cast<size_t>(i)].data.u64;
    if (id == kWakeId) {
      (void)impl_->wake.TryWait();  // nothing to do if this fails: the wake was seen
      continue;
    }
    std::shared_ptr<Watch> watch = impl_->Find(id);
    if (!watch) continue;  // removed after epoll_wait reported it
    std::lock_guard lock(watch->mu);
    if (watch->removed) continue;  // removed while this thread waited for the lock
    const Watch* outer = std::exchange(tls_running, watch.get());
    watch->callback();
    tls_running = outer;
    ++ran;
  }
  return ran;
}

Status Poller::Wake() { return impl_->wake.Signal(); }

size_t Poller::watch_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->watches.size();
}

}  // namespace virt
