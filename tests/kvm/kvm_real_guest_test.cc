// Real /dev/kvm tests: the tiny guest's PIO, MMIO, HLT and MSIs through irqfd routes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "real_kvm_test.h"

namespace virt::kvm {
namespace {

using guest::GuestDriver;

constexpr uint32_t kMmioValue = kRealMmioValue;
using KvmRealGuestTest = RealKvmTest;

TEST_F(KvmRealGuestTest, SaysHelloEchoesMmioAndHalts) {
  auto partition = NewPartition(/*irqchip=*/false);
  ASSERT_NE(partition, nullptr);
  EXPECT_EQ(partition->irqfd(), nullptr);
  auto driver = GuestDriver::Create(*partition, guest::kModeHalt, kMmioValue);
  ASSERT_TRUE(driver) << driver.error().Message();
  Watchdog watchdog((*driver)->vcpu());

  auto exit = (*driver)->RunToEvent();
  ASSERT_TRUE(exit) << exit.error().Message();
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*exit)) << guest::Describe(*exit);
  EXPECT_EQ((*driver)->hello(), "hello from the guest\n");
  ASSERT_TRUE((*driver)->echoed().has_value());
  EXPECT_EQ(*(*driver)->echoed(), kMmioValue);
}

TEST_F(KvmRealGuestTest, CancelFromAnotherThreadStopsASpinningGuest) {
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  auto driver = GuestDriver::Create(*partition, guest::kModeSpin, kMmioValue);
  ASSERT_TRUE(driver) << driver.error().Message();
  Vcpu& vcpu = (*driver)->vcpu();

  // Up to "spinning now": from here on the guest makes no exits.
  auto spinning = (*driver)->RunToEvent();
  ASSERT_TRUE(spinning) << spinning.error().Message();
  const auto* ready = std::get_if<IoExit>(&*spinning);
  ASSERT_TRUE(ready != nullptr && ready->port == guest::kReadyPort) << guest::Describe(*spinning);
  ASSERT_TRUE((*driver)->echoed().has_value());
  EXPECT_EQ(*(*driver)->echoed(), kMmioValue);

  // Only Cancel can end these Runs: whether it lands before KVM_RUN (immediate_exit) or inside
  // it (the kick signal), Run must say cancelled, and each cancel is consumed by one Run.
  for (int round = 0; round < 2; ++round) {
    std::thread canceller([&vcpu] { vcpu.Cancel(); });
    auto exit = vcpu.Run();
    canceller.join();
    ASSERT_TRUE(exit) << exit.error().Message();
    EXPECT_TRUE(std::holds_alternative<CancelledExit>(*exit))
        << "round " << round << ": " << guest::Describe(*exit);
  }
}

TEST_F(KvmRealGuestTest, RequestMsiIsTakenByTheGuest) {
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  auto driver = StartInterruptGuest(*partition);
  ASSERT_NE(driver, nullptr);
  Watchdog watchdog(driver->vcpu());

  auto delivered = partition->RequestMsi(MsiMessage::Fixed(0, 0x61));
  ASSERT_TRUE(delivered) << delivered.error().Message();
  EXPECT_TRUE(*delivered);
  EXPECT_EQ(Vector(driver->RunToVector()), 0x61u);

  EXPECT_FALSE(partition->RequestMsi({0xfed00000, 0x61}));
}

// The guest tells vectors apart by the IDT entry taken, so an exception and an interrupt each
// report their own vector, and nothing depends on reading the APIC back.
TEST_F(KvmRealGuestTest, GuestTellsAnExceptionFromAnInterrupt) {
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  auto driver = StartInterruptGuest(*partition, guest::kModeException);
  ASSERT_NE(driver, nullptr);
  Watchdog watchdog(driver->vcpu());

  EXPECT_EQ(Vector(driver->RunToVector()), guest::kExceptionBase + 6);  // #UD
  for (uint8_t v : {0x20, 0x61, 0xfe}) {  // lowest interrupt vector, a middle one, the highest
    ASSERT_TRUE(partition->RequestMsi(MsiMessage::Fixed(0, v)));
    EXPECT_EQ(Vector(driver->RunToVector()), v);
  }
}

TEST_F(KvmRealGuestTest, IrqfdRouteDeliversRetargetsMasksAndDrops) {
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  IrqFd* irqfd = partition->irqfd();
  ASSERT_NE(irqfd, nullptr);
  auto driver = StartInterruptGuest(*partition);
  ASSERT_NE(driver, nullptr);
  Watchdog watchdog(driver->vcpu());

  ExpectRouteContract(*irqfd, *partition, *driver);
}

TEST_F(KvmRealGuestTest, BatchedRoutesAllDeliver) {
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  IrqFd* irqfd = partition->irqfd();
  ASSERT_NE(irqfd, nullptr);
  auto driver = StartInterruptGuest(*partition);
  ASSERT_NE(driver, nullptr);
  Watchdog watchdog(driver->vcpu());

  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  const uint64_t pushes_before = irqfd->push_count();
  {
    RouteBatch batch(*irqfd);
    for (uint8_t v = 0x80; v < 0x90; ++v) {
      auto route = irqfd->NewRoute();
      ASSERT_TRUE(route) << route.error().Message();
      ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, v)));
      routes.push_back(std::move(*route));
    }
    ASSERT_TRUE(batch.Commit());
  }
  EXPECT_EQ(irqfd->push_count(), pushes_before + 1);
  for (size_t i = 0; i < routes.size(); ++i) {
    ASSERT_TRUE(routes[i]->event().Signal());
    EXPECT_EQ(Vector(driver->RunToVector()), 0x80u + i);
  }
}

TEST_F(KvmRealGuestTest, RouteOutlivingItsPartitionFailsCleanly) {
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  auto route = partition->irqfd()->NewRoute();
  ASSERT_TRUE(route);
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x40)));
  partition.reset();
  auto set = (*route)->SetMsi(MsiMessage::Fixed(0, 0x41));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, ErrorCode::kPartitionGone);
  EXPECT_TRUE((*route)->event().Signal());  // the event itself still works; it goes nowhere
}

}  // namespace
}  // namespace virt::kvm
