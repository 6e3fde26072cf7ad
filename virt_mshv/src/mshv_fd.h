// MshvFd: move-only owner of an MSHV fd (/dev/mshv, partition, vp), closed through the ioctl layer.
#pragma once

#include <memory>
#include <utility>

#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

class MshvFd {
 public:
  MshvFd() = default;
  MshvFd(std::shared_ptr<MshvIoctl> ioctl, int fd) : ioctl_(std::move(ioctl)), fd_(fd) {}
  MshvFd(MshvFd&& other) noexcept
      : ioctl_(std::move(other.ioctl_)), fd_(std::exchange(other.fd_, -1)) {}
  MshvFd& operator=(MshvFd&& other) noexcept {
    if (this != &other) {
      Reset();
      ioctl_ = std::move(other.ioctl_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  MshvFd(const MshvFd&) = delete;
  MshvFd& operator=(const MshvFd&) = delete;
  ~MshvFd() { Reset(); }

  int get() const { return fd_; }
  // Gives up ownership.
  int release() { return std::exchange(fd_, -1); }
  void Reset() noexcept {
    if (fd_ >= 0) (void)ioctl_->Close(std::exchange(fd_, -1));
  }

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  int fd_ = -1;
};

static_assert(!std::is_copy_constructible_v<MshvFd>);
static_assert(std::is_nothrow_destructible_v<MshvFd>);
static_assert(std::is_nothrow_move_constructible_v<MshvFd>);

}  // namespace virt::mshv
