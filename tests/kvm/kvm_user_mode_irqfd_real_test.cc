// Real /dev/kvm test: the tiny guest takes MSIs through a user-mode irqfd route (UserModeIrqFd over RequestMsi).
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "guest_driver.h"
#include "virt/kvm/kvm_hypervisor.h"
#include "virt/user_mode_irqfd.h"

namespace virt::kvm {
namespace {

using guest::GuestDriver;

constexpr uint32_t kMmioValue = 0x5eed1234;

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

uint32_t Vector(Result<uint32_t> r) {
  EXPECT_TRUE(r) << r.error().Message();
  return r ? *r : 0;
}

// The same checks as KvmRealGuestTest.IrqfdRouteDeliversRetargetsMasksAndDrops, with the route
// from a UserModeIrqFd: its dispatcher thread injects with KVM_SIGNAL_MSI while the vCPU runs.
TEST(KvmUserModeIrqFdRealTest, RouteDeliversRetargetsMasksAndDrops) {
  const Availability a = KvmHypervisor::Probe(MakeSystemKvmIoctl());
  if (!a.available()) {
    GTEST_SKIP() << "real KVM tests need a usable " << kDefaultDevice << ": " << ToString(a.why)
                 << " (" << a.reason << ")";
  }
  auto hypervisor = KvmHypervisor::Create(MakeSystemKvmIoctl());
  ASSERT_TRUE(hypervisor) << hypervisor.error().Message();
  auto partition = (*hypervisor)->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(partition) << partition.error().Message();
  std::vector<Error> errors;  // written on the dispatcher thread, read after Shutdown
  // Declared after the partition (and the errors), so it shuts down, joining its dispatcher,
  // before they go.
  auto irqfd = MakeUserModeIrqFd(**partition);
  ASSERT_TRUE(irqfd) << irqfd.error().Message();
  (*irqfd)->SetErrorHandler([&errors](const Error& e) { errors.push_back(e); });

  auto driver = GuestDriver::Create(**partition, guest::kModeInterrupts, kMmioValue);
  ASSERT_TRUE(driver) << driver.error().Message();
  Watchdog watchdog((*driver)->vcpu());
  auto ready = (*driver)->RunToEvent();
  ASSERT_TRUE(ready) << ready.error().Message();
  const auto* io = std::get_if<IoExit>(&*ready);
  ASSERT_TRUE(io != nullptr && io->port == guest::kReadyPort) << guest::Describe(*ready);

  auto route = (*irqfd)->NewRoute();
  ASSERT_TRUE(route) << route.error().Message();
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x40)));

  // Delivery.
  ASSERT_TRUE((*route)->event().Signal());
  EXPECT_EQ(Vector((*driver)->RunToVector()), 0x40u);

  // Retarget: the same event now raises another vector.
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x51)));
  ASSERT_TRUE((*route)->event().Signal());
  EXPECT_EQ(Vector((*driver)->RunToVector()), 0x51u);

  // Mask: a signal while masked is held. A lower-priority sentinel MSI proves nothing else
  // arrived (the held vector, being higher, would be taken first).
  ASSERT_TRUE((*route)->ClearMsi());
  EXPECT_FALSE((*route)->msi().has_value());
  ASSERT_TRUE((*route)->event().Signal());
  ASSERT_TRUE((*partition)->RequestMsi(MsiMessage::Fixed(0, 0x30)));
  EXPECT_EQ(Vector((*driver)->RunToVector()), 0x30u);

  // Unmask: the held signal is delivered, with the new target.
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x52)));
  EXPECT_EQ(Vector((*driver)->RunToVector()), 0x52u);

  // Drop: a device still holding the old eventfd can signal it, and nothing arrives.
  const int old_event = ::dup((*route)->event().native_handle());
  ASSERT_GE(old_event, 0);
  route->reset();
  const uint64_t one = 1;
  ASSERT_EQ(::write(old_event, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  ASSERT_TRUE((*partition)->RequestMsi(MsiMessage::Fixed(0, 0x31)));
  EXPECT_EQ(Vector((*driver)->RunToVector()), 0x31u);
  ::close(old_event);

  ASSERT_TRUE((*irqfd)->Shutdown());  // joins the dispatcher, so its count is final
  EXPECT_EQ((*irqfd)->injected_count(), 3u);  // only the route's three MSIs went through it
  for (const Error& e : errors) ADD_FAILURE() << e.Message();
}

}  // namespace
}  // namespace virt::kvm
