// Real /dev/kvm doorbell loop: the guest rings 10,000 times, a device thread answers each ring
// with an MSI through an irqfd route; through KVM ioeventfds the vCPU makes no exit at all,
// through the user-mode fallback one exit per ring, and either way one MSI per ring.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "real_kvm_test.h"
#include "virt/poller.h"
#include "virt/user_mode_doorbells.h"

namespace virt::kvm {
namespace {

using guest::GuestDriver;
using KvmRealDoorbellTest = RealKvmTest;

constexpr uint32_t kRings = 10000;
constexpr uint8_t kVector = 0x45;

// Waits on the doorbell's event with a Poller and answers every ring with one signal of the
// route's event; counts rings and wake-ups.
class Device {
 public:
  Device(const Event& doorbell, const Event& msi) : doorbell_(doorbell), msi_(msi) {}
  ~Device() { Stop(); }

  ::testing::AssertionResult Start() {
    auto poller = Poller::Create();
    if (!poller) return ::testing::AssertionFailure() << poller.error().Message();
    poller_.emplace(std::move(*poller));
    auto id = poller_->Add(doorbell_, [this] {
      auto n = doorbell_.TryWait();
      if (!n || *n == 0) return;
      rings_ += *n;
      for (uint64_t i = 0; i < *n; ++i) {
        if (!msi_.Signal()) ++errors_;
      }
    });
    if (!id) return ::testing::AssertionFailure() << id.error().Message();
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        if (!poller_->Wait(std::chrono::milliseconds(-1))) ++errors_;
      }
    });
    return ::testing::AssertionSuccess();
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    poller_->Wake();
    thread_.join();
  }
  uint64_t rings() const { return rings_.load(); }
  int errors() const { return errors_.load(); }

 private:
  const Event& doorbell_;
  const Event& msi_;
  std::optional<Poller> poller_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rings_{0};
  std::atomic<int> errors_{0};
};

struct LoopResult {
  uint64_t exits = 0;       // exits Run returned between the count IN and the final OUT
  uint64_t mmio_exits = 0;  // of which doorbell writes (user-mode path only)
  uint32_t guest_irqs = 0;  // what the guest reported
};

// Runs the mode-6 guest to its final report. `user_mode`, when set, gets every write exit.
LoopResult RunLoop(GuestDriver& driver, UserModeDoorbells* user_mode) {
  LoopResult r;
  auto exit = driver.RunToEvent();
  EXPECT_TRUE(exit) << exit.error().Message();
  const auto* count = exit ? std::get_if<IoExit>(&*exit) : nullptr;
  EXPECT_TRUE(count != nullptr && !count->is_write && count->port == guest::kCountPort);
  if (count == nullptr) return r;
  const uint8_t n[4] = {kRings & 0xff, (kRings >> 8) & 0xff, 0, 0};
  EXPECT_TRUE(driver.vcpu().CompleteIoIn(n));
  for (;;) {
    auto e = driver.vcpu().Run();
    EXPECT_TRUE(e) << e.error().Message();
    if (!e) return r;
    if (const auto* io = std::get_if<IoExit>(&*e); io && io->port == guest::kVectorPort) {
      r.guest_irqs = io->value();
      return r;
    }
    ++r.exits;
    const auto* mmio = std::get_if<MmioExit>(&*e);
    if (mmio != nullptr && user_mode != nullptr && user_mode->Dispatch(*mmio)) {
      ++r.mmio_exits;
      continue;
    }
    ADD_FAILURE() << "unexpected exit " << guest::Describe(*e);
    return r;
  }
}

void ExpectOneMsiPerRing(KvmHypervisor& hv, bool kernel_doorbell) {
  auto p = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(p) << p.error().Message();
  Partition& partition = **p;
  std::unique_ptr<UserModeDoorbells> user_mode;
  Doorbells* doorbells = partition.doorbells();
  if (!kernel_doorbell) {
    user_mode = UserModeDoorbells::Create();
    doorbells = user_mode.get();
  }
  ASSERT_NE(doorbells, nullptr);
  auto bell = doorbells->Register({DoorbellSpace::kMmio, guest::kDoorbellAddress, 4, {}});
  ASSERT_TRUE(bell) << bell.error().Message();
  auto route = partition.irqfd()->NewRoute();
  ASSERT_TRUE(route) << route.error().Message();
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, kVector)));

  auto driver = GuestDriver::Create(partition, guest::kModeDoorbell, kRealMmioValue);
  ASSERT_TRUE(driver) << driver.error().Message();
  Device device((*bell)->event(), (*route)->event());
  ASSERT_TRUE(device.Start());
  Watchdog watchdog((*driver)->vcpu(), std::chrono::seconds(120));

  const LoopResult r = RunLoop(**driver, user_mode.get());
  device.Stop();
  EXPECT_EQ(r.guest_irqs, kRings);
  EXPECT_EQ(device.rings(), kRings) << "a ring lost, or an MSI without a ring";
  EXPECT_EQ(device.errors(), 0);
  if (kernel_doorbell) {
    EXPECT_EQ(r.exits, 0u) << "the loop should not leave the kernel";
  } else {
    EXPECT_EQ(r.exits, kRings);
    EXPECT_EQ(r.mmio_exits, kRings);
  }
}

TEST_F(KvmRealDoorbellTest, KernelDoorbellLoopMakesNoExitsAndOneMsiPerRing) {
  ExpectOneMsiPerRing(*hypervisor_, /*kernel_doorbell=*/true);
}

TEST_F(KvmRealDoorbellTest, UserModeDoorbellLoopMakesOneExitAndOneMsiPerRing) {
  ExpectOneMsiPerRing(*hypervisor_, /*kernel_doorbell=*/false);
}

}  // namespace
}  // namespace virt::kvm
