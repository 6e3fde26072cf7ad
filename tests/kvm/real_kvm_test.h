// Shared support for the real /dev/kvm suites: the probe-or-skip fixture and a vCPU watchdog.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "guest_driver.h"
#include "virt/kvm/kvm_hypervisor.h"

namespace virt::kvm {

inline constexpr uint32_t kRealMmioValue = 0x5eed1234;

// Cancels the vCPU if the test has not finished in time, so a lost interrupt fails the test
// (the guest's Run returns CancelledExit) instead of hanging it.
class Watchdog {
 public:
  explicit Watchdog(Vcpu& vcpu, std::chrono::seconds limit = std::chrono::seconds(20))
      : thread_([this, &vcpu, limit] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) vcpu.Cancel();
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Opens the real KVM backend, or skips when this host has none for us. A device that is there
// but that the backend cannot open is a failure (that is how a broken ioctl once hid behind a
// skip).
class RealKvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Availability a = KvmHypervisor::Probe(MakeSystemKvmIoctl());
    if (a.why == Unavailability::kDeviceMissing || a.why == Unavailability::kPermissionDenied) {
      GTEST_SKIP() << "real KVM tests need a usable " << kDefaultDevice << ": "
                   << ToString(a.why) << " (" << a.reason << ")";
    }
    ASSERT_TRUE(a.available()) << kDefaultDevice << " is present but unusable: " << a.reason;
    auto h = KvmHypervisor::Create(MakeSystemKvmIoctl());
    ASSERT_TRUE(h) << h.error().Message();
    hypervisor_ = std::move(*h);
  }

  std::unique_ptr<Partition> NewPartition(bool irqchip) {
    auto p = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = irqchip});
    EXPECT_TRUE(p) << p.error().Message();
    return p ? std::move(*p) : nullptr;
  }

  // Runs a mode-1 guest up to its "ready for interrupts" OUT.
  std::unique_ptr<guest::GuestDriver> StartInterruptGuest(Partition& partition) {
    auto driver = guest::GuestDriver::Create(partition, guest::kModeInterrupts, kRealMmioValue);
    EXPECT_TRUE(driver) << driver.error().Message();
    if (!driver) return nullptr;
    auto exit = (*driver)->RunToEvent();
    EXPECT_TRUE(exit) << exit.error().Message();
    if (!exit) return nullptr;
    const auto* io = std::get_if<IoExit>(&*exit);
    EXPECT_TRUE(io != nullptr && io->port == guest::kReadyPort) << guest::Describe(*exit);
    return std::move(*driver);
  }

  // The vector of a RunToVector, failing the test (and giving 0) on an error.
  static uint32_t Vector(Result<uint32_t> r) {
    EXPECT_TRUE(r) << r.error().Message();
    return r ? *r : 0;
  }

  std::unique_ptr<KvmHypervisor> hypervisor_;
};

}  // namespace virt::kvm
