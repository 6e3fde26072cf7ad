// KvmFd: move-only owner of a KVM fd, closed through the ioctl layer.
#pragma once

#include <memory>
#include <utility>

#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {

class KvmFd {
 public:
  KvmFd() = default;
  KvmFd(std::shared_ptr<KvmIoctl> ioctl, int fd) : ioctl_(std::move(ioctl)), fd_(fd) {}
  KvmFd(KvmFd&& other) noexcept
      : ioctl_(std::move(other.ioctl_)), fd_(std::exchange(other.fd_, -1)) {}
  KvmFd& operator=(KvmFd&& other) noexcept {
    if (this != &other) {
      Reset();
      ioctl_ = std::move(other.ioctl_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  KvmFd(const KvmFd&) = delete;
  KvmFd& operator=(const KvmFd&) = delete;
  ~KvmFd() { Reset(); }

  int get() const { return fd_; }
  // Gives up ownership.
  int release() { return std::exchange(fd_, -1); }
  void Reset() noexcept {
    if (fd_ >= 0) (void)ioctl_->Close(std::exchange(fd_, -1));
  }

 private:
  std::shared_ptr<KvmIoctl> ioctl_;
  int fd_ = -1;
};

}  // namespace virt::kvm
