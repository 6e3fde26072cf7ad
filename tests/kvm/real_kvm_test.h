// Shared support for the real /dev/kvm suites: the probe-or-skip fixture and a vCPU watchdog.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

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

  // Runs a mode-1 (or `mode`) guest up to its "ready for interrupts" OUT.
  std::unique_ptr<guest::GuestDriver> StartInterruptGuest(
      Partition& partition, uint32_t mode = guest::kModeInterrupts) {
    auto driver = guest::GuestDriver::Create(partition, mode, kRealMmioValue);
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

  // The IrqFdRoute contract on a running mode-1 guest, for any IrqFd: delivery, retarget, mask
  // (held, then delivered on unmask), and nothing after drop. Injects exactly three MSIs through
  // the route; the sentinels go through partition.RequestMsi.
  static void ExpectRouteContract(IrqFd& irqfd, Partition& partition, guest::GuestDriver& driver) {
    auto route = irqfd.NewRoute();
    ASSERT_TRUE(route) << route.error().Message();
    ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x40)));

    // Delivery.
    ASSERT_TRUE((*route)->event().Signal());
    EXPECT_EQ(Vector(driver.RunToVector()), 0x40u);

    // Retarget: the same event now raises another vector.
    ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x51)));
    ASSERT_TRUE((*route)->event().Signal());
    EXPECT_EQ(Vector(driver.RunToVector()), 0x51u);

    // Mask: a signal while masked is held. A lower-priority sentinel MSI proves nothing else
    // arrived (the held vector, being higher, would be taken first).
    ASSERT_TRUE((*route)->ClearMsi());
    EXPECT_FALSE((*route)->msi().has_value());
    ASSERT_TRUE((*route)->event().Signal());
    ASSERT_TRUE(partition.RequestMsi(MsiMessage::Fixed(0, 0x30)));
    EXPECT_EQ(Vector(driver.RunToVector()), 0x30u);

    // Unmask: the held signal is delivered, with the new target.
    ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x52)));
    EXPECT_EQ(Vector(driver.RunToVector()), 0x52u);

    // Drop: a device still holding the old eventfd can signal it, and nothing arrives.
    const int old_event = ::dup((*route)->event().native_handle());
    ASSERT_GE(old_event, 0);
    route->reset();
    const uint64_t one = 1;
    ASSERT_EQ(::write(old_event, &one, sizeof one), static_cast<ssize_t>(sizeof one));
    ASSERT_TRUE(partition.RequestMsi(MsiMessage::Fixed(0, 0x31)));
    EXPECT_EQ(Vector(driver.RunToVector()), 0x31u);
    ::close(old_event);
  }

  std::unique_ptr<KvmHypervisor> hypervisor_;
};

}  // namespace virt::kvm
