// The route-churn stress (tests/route_churn) on UserModeIrqFd: its dispatcher is the delivery path.
#include <gtest/gtest.h>

#include "route_churn.h"
#include "virt/user_mode_irqfd.h"

namespace virt {
namespace {

namespace churn = test::churn;

TEST(UserModeIrqFdChurnTest, EightThreadsChurningRoutesLoseDuplicateAndStrayNoMsi) {
  constexpr uint32_t kCapacity = 24 + 64;  // 8 threads hold at most 3 routes each
  churn::DeliveryLog log;
  auto irqfd = UserModeIrqFd::Create(
      [&log](const MsiMessage& msi) -> Result<bool> {
        log.Record(msi);
        return true;
      },
      kCapacity);
  ASSERT_TRUE(irqfd) << irqfd.error().Message();
  churn::RunRouteChurn(**irqfd, log, {.threads = 8, .rounds = 25});
  churn::ExpectEveryGsiFree(**irqfd, kCapacity - 24);
  ASSERT_TRUE((*irqfd)->Shutdown());
  EXPECT_EQ((*irqfd)->injected_count(), 8u * 25u * 7u + 1u) << "the dispatcher injected each once";
}

}  // namespace
}  // namespace virt
