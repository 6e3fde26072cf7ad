// The route-churn stress (tests/route_churn) on WhpTriggerIrqFd over the WHP fake, whose trigger
// events are the delivery path: each SetEvent on a live trigger's event delivers its interrupt.
#include <gtest/gtest.h>

#include "route_churn.h"
#include "whp_irqfd_fixture.h"

namespace virt::whp::test {
namespace {

namespace churn = virt::test::churn;

TEST_F(WhpIrqFdTest, RouteChurnOnEightThreadsLosesDuplicatesAndStraysNoMsi) {
  constexpr uint32_t kCapacity = WhpTriggerIrqFd::kReservedGsis + 64;  // 8 threads x 3 routes
  churn::DeliveryLog log;
  fake_.SetDeliveryHook([&log](const WHV_INTERRUPT_CONTROL& c) {
    const bool fixed_to_apic0 = c.Type == WHvX64InterruptTypeFixed && c.Destination == 0 &&
                                c.DestinationMode == 0;
    log.RecordVector(fixed_to_apic0 ? c.Vector : 256);
  });
  auto irqfd = WhpTriggerIrqFd::Create(fake_.api(), partition_, kCapacity);
  ASSERT_TRUE(irqfd.has_value()) << irqfd.error().Message();
  const size_t handles_before = fake_.open_handles().size();

  churn::RunRouteChurn(**irqfd, log, {.threads = 8, .rounds = 25});

  EXPECT_TRUE(fake_.triggers().empty()) << "triggers left behind";
  EXPECT_EQ(fake_.open_handles().size(), handles_before) << "every route's event is closed";
  churn::ExpectEveryGsiFree(**irqfd, kCapacity - WhpTriggerIrqFd::kReservedGsis);
  (*irqfd)->Shutdown();
  irqfd->reset();
  fake_.SetDeliveryHook(nullptr);
}

}  // namespace
}  // namespace virt::whp::test
