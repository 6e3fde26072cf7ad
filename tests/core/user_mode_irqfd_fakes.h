// Test doubles for UserModeIrqFd: an injector that records MSIs, and a partition built on it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

#include "virt/partition.h"
#include "virt/user_mode_irqfd.h"

namespace virt::test {

// Failure guard for waits that must succeed; never a synchronisation delay.
inline constexpr std::chrono::seconds kGuard{20};

// Records every MSI it is asked to inject (after returning from an optional block), and lets
// tests wait on the record with a condition variable.
class FakeInjector {
 public:
  UserModeIrqFd::Injector AsInjector() {
    return [this](const MsiMessage& msi) { return Inject(msi); };
  }

  Result<bool> Inject(const MsiMessage& msi) {
    std::unique_lock lock(mu_);
    if (block_on_ == msi && !unblocked_) {
      blocked_ = true;
      cv_.notify_all();
      cv_.wait_for(lock, kGuard, [this] { return unblocked_; });
    }
    if (fail_on_ == msi) return Error::Make(ErrorCode::kInvalidArgument, "FakeInjector", "told to");
    got_.push_back(msi);
    cv_.notify_all();
    return true;
  }

  // Waits until `msi` was injected at least `times` times; false on the guard timeout.
  bool WaitFor(const MsiMessage& msi, size_t times = 1) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [&] { return CountLocked(msi) >= times; });
  }

  size_t Count(const MsiMessage& msi) {
    std::lock_guard lock(mu_);
    return CountLocked(msi);
  }

  size_t Total() {
    std::lock_guard lock(mu_);
    return got_.size();
  }

  // The next injection of `msi` waits for Unblock (WaitBlocked tells when it does).
  void BlockOn(const MsiMessage& msi) {
    std::lock_guard lock(mu_);
    block_on_ = msi;
  }
  bool WaitBlocked() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [this] { return blocked_; });
  }
  void Unblock() {
    std::lock_guard lock(mu_);
    unblocked_ = true;
    cv_.notify_all();
  }

  // Injections of `msi` fail from now on (and are not recorded).
  void FailOn(const MsiMessage& msi) {
    std::lock_guard lock(mu_);
    fail_on_ = msi;
  }

 private:
  size_t CountLocked(const MsiMessage& msi) const {
    size_t n = 0;
    for (const MsiMessage& m : got_) n += m == msi;
    return n;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MsiMessage> got_;
  std::optional<MsiMessage> block_on_;
  std::optional<MsiMessage> fail_on_;
  bool blocked_ = false;
  bool unblocked_ = false;
};

// A partition that can only RequestMsi, into a FakeInjector.
class FakePartition : public Partition {
 public:
  Status MapMemory(const MemoryRegion&) override { return Unsupported(); }
  Status UnmapMemory(uint64_t, uint64_t) override { return Unsupported(); }
  Result<std::unique_ptr<Vcpu>> CreateVcpu(uint32_t) override { return Unsupported().error(); }
  Result<bool> RequestMsi(const MsiMessage& msi) override { return injector.Inject(msi); }
  IrqFd* irqfd() override { return nullptr; }

  FakeInjector injector;

 private:
  static Status Unsupported() {
    return Error::Make(ErrorCode::kUnavailable, "FakePartition", "not supported");
  }
};

}  // namespace virt::test
