// Real /dev/kvm doorbell loop: the guest rings 10,000 times, a device thread answers each ring
// with an MSI through an irqfd route; through KVM ioeventfds the vCPU makes no exit at all,
// through the user-mode fallback one exit per ring, and either way one MSI per ring.
#include <gtest/gtest.h>

#include "doorbell_device.h"
#include "real_kvm_test.h"
#include "virt/user_mode_doorbells.h"

namespace virt::kvm {
namespace {

using guest::DoorbellDevice;
using guest::GuestDriver;
using KvmRealDoorbellTest = RealKvmTest;

constexpr uint32_t kRings = 10000;
constexpr uint8_t kVector = 0x45;

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
  auto device = DoorbellDevice::Start((*bell)->event(), (*route)->event());
  ASSERT_TRUE(device) << device.error().Message();
  Watchdog watchdog((*driver)->vcpu(), std::chrono::seconds(120));

  auto r = guest::RunDoorbellLoop(**driver, kRings, user_mode.get());
  (*device)->Stop();
  ASSERT_TRUE(r) << r.error().Message();
  EXPECT_EQ(r->guest_interrupts, kRings);
  EXPECT_EQ((*device)->rings(), kRings) << "a ring lost, or an MSI without a ring";
  EXPECT_EQ((*device)->errors(), 0u);
  if (kernel_doorbell) {
    EXPECT_EQ(r->exits, 0u) << "the loop should not leave the kernel";
  } else {
    EXPECT_EQ(r->exits, kRings);
    EXPECT_EQ(r->doorbell_exits, kRings);
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
