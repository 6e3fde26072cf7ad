// Event on Linux: an eventfd.
#include "virt/event.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace virt {

Result<Event> Event::Create() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Error::Errno("eventfd", errno);
  return Event(fd);
}

Event::Event(Event&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Event::~Event() {
  if (fd_ >= 0) ::close(fd_);
}

Status Event::Signal(uint64_t count) const {
  if (count == 0) return Error::Make(ErrorCode::kInvalidArgument, "Event::Signal", "count is 0");
  if (fd_ < 0) return Error::Make(ErrorCode::kFailedPrecondition, "Event::Signal", "empty event");
  for (;;) {
    if (::write(fd_, &count, sizeof count) == sizeof count) return Ok();
    if (errno != EINTR) return Error::Errno("eventfd write", errno);
  }
}

Result<uint64_t> Event::TryWait() const {
  if (fd_ < 0) return Error::Make(ErrorCode::kFailedPrecondition, "Event::TryWait", "empty event");
  uint64_t value = 0;
  for (;;) {
    if (::read(fd_, &value, sizeof value) == sizeof value) return value;
    if (errno == EAGAIN) return uint64_t{0};
    if (errno != EINTR) return Error::Errno("eventfd read", errno);
  }
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
