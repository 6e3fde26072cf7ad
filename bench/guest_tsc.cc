// guest_tsc: KVM_GET_TSC_KHZ on a throw-away vCPU, and a host rdtsc calibration to compare with.
#include "guest_tsc.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cerrno>
#include <cstring>

namespace virt_bench {
namespace {

// Closes a file descriptor on scope exit.
struct OwnedFd {
  int fd = -1;
  explicit OwnedFd(int f) : fd(f) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string Errno(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

double NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

}  // namespace

std::expected<double, std::string> GuestTscKhz() {
  OwnedFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (kvm.fd < 0) return std::unexpected(Errno("open /dev/kvm"));
  if (::ioctl(kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) <= 0) {
    return std::unexpected("KVM_CHECK_EXTENSION: no KVM_CAP_GET_TSC_KHZ");
  }
  OwnedFd vm(::ioctl(kvm.fd, KVM_CREATE_VM, 0));
  if (vm.fd < 0) return std::unexpected(Errno("KVM_CREATE_VM"));
  OwnedFd vcpu(::ioctl(vm.fd, KVM_CREATE_VCPU, 0));
  if (vcpu.fd < 0) return std::unexpected(Errno("KVM_CREATE_VCPU"));
  const int khz = ::ioctl(vcpu.fd, KVM_GET_TSC_KHZ, 0);
  if (khz <= 0) return std::unexpected(Errno("KVM_GET_TSC_KHZ"));
  return static_cast<double>(khz);
}

double HostTscKhz() {
  const double t0 = NowNs();
  const unsigned long long c0 = __rdtsc();
  while (NowNs() - t0 < 20e6) {
  }
  const unsigned long long c1 = __rdtsc();
  const double t1 = NowNs();
  return static_cast<double>(c1 - c0) / (t1 - t0) * 1e6;
}

}  // namespace virt_bench
