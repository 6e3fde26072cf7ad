// Event on Linux: an eventfd, with an optional lock + sink for CreateWithSink events.
#include "virt/event.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <utility>

namespace virt {

// Signal, the drains and sink changes of a sink-capable event all hold `mu`, so a signal is
// either counted before SetSink drains the counter or handed to the sink after it: never lost.
struct Event::SinkState {
  std::mutex mu;
  Sink sink;  // guarded by mu
};

namespace {

// The failures of the calls below and of Signal/TryWait, out of line and cold: building an
// Error (its string) stays off the frames of the paths every signal and dispatch take.
[[gnu::cold, gnu::noinline]] Status WriteFailed(int err) {
  return Error::Errno("eventfd write", err);
}
[[gnu::cold, gnu::noinline]] Result<uint64_t> ReadFailed(int err) {
  return Error::Errno("eventfd read", err);
}
[[gnu::cold, gnu::noinline]] Status Refused(ErrorCode code, const char* op, const char* why) {
  return Error::Make(code, op, why);
}

inline Status WriteCount(int fd, uint64_t count) {
  for (;;) {
    if (::write(fd, &count, sizeof count) == sizeof count) [[likely]] return Ok();
    if (errno != EINTR) return WriteFailed(errno);
  }
}

inline Result<uint64_t> ReadCount(int fd) {
  uint64_t value = 0;
  for (;;) {
    if (::read(fd, &value, sizeof value) == sizeof value) [[likely]] return value;
    if (errno == EAGAIN) return uint64_t{0};
    if (errno != EINTR) return ReadFailed(errno);
  }
}

}  // namespace

[[gnu::cold, gnu::noinline]] Result<Event> Event::CreateFailed() {
  return Error::Errno("eventfd", errno);
}

Result<Event> Event::CreateWithSink() {
  auto event = Create();
  if (!event) return event;
  event->sink_ = new SinkState;
  return event;
}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    delete sink_;
    fd_ = std::exchange(other.fd_, -1);
    sink_ = std::exchange(other.sink_, nullptr);
  }
  return *this;
}

void Event::Close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  delete sink_;
}

Status Event::Signal(uint64_t count) const {
  if (count == 0) [[unlikely]] {
    return Refused(ErrorCode::kInvalidArgument, "Event::Signal", "count is 0");
  }
  if (fd_ < 0) [[unlikely]] {
    return Refused(ErrorCode::kFailedPrecondition, "Event::Signal", "empty event");
  }
  if (!sink_) [[likely]] return WriteCount(fd_, count);
  std::lock_guard lock(sink_->mu);
  if (sink_->sink) return sink_->sink(count);
  return WriteCount(fd_, count);
}

Status Event::SetSink(Sink sink) const {
  if (fd_ < 0) return Error::Make(ErrorCode::kFailedPrecondition, "Event::SetSink", "empty event");
  if (!sink_) {
    return Error::Make(ErrorCode::kFailedPrecondition, "Event::SetSink",
                       "the event was not made by Event::CreateWithSink");
  }
  if (!sink) return Error::Make(ErrorCode::kInvalidArgument, "Event::SetSink", "empty sink");
  std::lock_guard lock(sink_->mu);
  auto pending = ReadCount(fd_);
  if (!pending) return pending.error();
  if (*pending != 0) {
    if (auto forwarded = sink(*pending); !forwarded) {
      // Put the count back (it fitted before, so it fits again) and leave no sink set.
      (void)WriteCount(fd_, *pending);
      return forwarded;
    }
  }
  sink_->sink = std::move(sink);
  return Ok();
}

void Event::ClearSink() const {
  if (!sink_) return;
  std::lock_guard lock(sink_->mu);
  sink_->sink = nullptr;
}

Result<uint64_t> Event::TryWait() const {
  if (fd_ < 0) [[unlikely]] {
    return Refused(ErrorCode::kFailedPrecondition, "Event::TryWait", "empty event").error();
  }
  if (!sink_) [[likely]] return ReadCount(fd_);
  std::lock_guard lock(sink_->mu);
  return ReadCount(fd_);
}

Result<uint64_t> Event::Wait(std::chrono::milliseconds timeout) const {
  if (fd_ < 0) return Error::Make(ErrorCode::kFailedPrecondition, "Event::Wait", "empty event");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto drained = TryWait();
    if (!drained || *drained != 0) return drained;
    // Round up: truncating would return (or poll 0 ms) while up to 1 ms of the timeout is left.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 && timeout.count() >= 0) return uint64_t{0};
    pollfd pfd{fd_, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, timeout.count() < 0 ? -1 : static_cast<int>(left.count()));
    if (rc < 0 && errno != EINTR) return Error::Errno("poll", errno);
  }
}

}  // namespace virt
