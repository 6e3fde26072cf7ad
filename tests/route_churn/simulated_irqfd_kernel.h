// A simulated kernel irqfd delivery path for the KVM and MSHV mock suites' route churn: a thread
// that injects, like the kernel, the MSI the last pushed table holds for each signalled GSI.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "route_churn.h"
#include "virt/msi_message.h"
#include "virt/result.h"

namespace virt::test::churn {

// Wrap the mock's irqfd and routing-table calls in Assign / Deassign / Push: each runs the
// backend's real (fake) call and, when it succeeds, updates what the delivery thread sees,
// under one lock. The thread waits on every assigned eventfd (epoll, level-triggered) and, under
// the lock, consumes a still-assigned one's count and records its GSI's MSI: a signal on an
// assigned eventfd is delivered once; one on a deassigned eventfd stays pending until the next
// assign (as KVM's and MSHV's irqfds do).
class SimulatedIrqfdKernel {
 public:
  explicit SimulatedIrqfdKernel(DeliveryLog& log)
      : log_(log), epoll_(::epoll_create1(EPOLL_CLOEXEC)), stop_(::eventfd(0, EFD_CLOEXEC)) {
    epoll_event ev{.events = EPOLLIN, .data = {.fd = stop_}};
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, stop_, &ev);
    thread_ = std::thread([this] { Deliver(); });
  }
  ~SimulatedIrqfdKernel() {
    const uint64_t one = 1;
    (void)!::write(stop_, &one, sizeof one);
    thread_.join();
    ::close(stop_);
    ::close(epoll_);
  }

  Status Assign(int fd, uint32_t gsi, const std::function<Status()>& call) {
    std::lock_guard lock(mu_);
    Status s = call();
    if (s) {
      assigned_[fd] = gsi;
      epoll_event ev{.events = EPOLLIN, .data = {.fd = fd}};
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    }
    return s;
  }
  Status Deassign(int fd, const std::function<Status()>& call) {
    std::lock_guard lock(mu_);
    Status s = call();
    if (s && assigned_.erase(fd) != 0) ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    return s;
  }
  // `table`: GSI -> MSI of every MSI entry the pushed table holds.
  Status Push(std::map<uint32_t, MsiMessage> table, const std::function<Status()>& call) {
    std::lock_guard lock(mu_);
    Status s = call();
    if (s) table_ = std::move(table);
    return s;
  }

  uint64_t unrouted() {
    std::lock_guard lock(mu_);
    return unrouted_;
  }

 private:
  void Deliver() {
    epoll_event events[16];
    for (;;) {
      const int n = ::epoll_wait(epoll_, events, 16, -1);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == stop_) return;
        std::lock_guard lock(mu_);
        auto it = assigned_.find(fd);
        if (it == assigned_.end()) continue;  // deassigned since: the count stays pending
        pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
        uint64_t count = 0;
        if (::poll(&p, 1, 0) != 1 || ::read(fd, &count, sizeof count) != sizeof count) continue;
        auto entry = table_.find(it->second);
        if (entry == table_.end()) {
          ++unrouted_;  // assigned to a GSI with no MSI entry: the backend broke the ordering
          continue;
        }
        log_.Record(entry->second);
      }
    }
  }

  DeliveryLog& log_;
  std::mutex mu_;
  std::map<int, uint32_t> assigned_;  // eventfd -> GSI
  std::map<uint32_t, MsiMessage> table_;
  uint64_t unrouted_ = 0;
  const int epoll_;
  const int stop_;
  std::thread thread_;
};

}  // namespace virt::test::churn
