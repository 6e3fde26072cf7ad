// Real /dev/kvm test: the tiny guest takes MSIs through a user-mode irqfd route (UserModeIrqFd over RequestMsi).
#include <gtest/gtest.h>
#include <unistd.h>

#include <vector>

#include "real_kvm_test.h"
#include "virt/user_mode_irqfd.h"

namespace virt::kvm {
namespace {

using KvmUserModeIrqFdRealTest = RealKvmTest;

// The same checks as KvmRealGuestTest.IrqfdRouteDeliversRetargetsMasksAndDrops, with the route
// from a UserModeIrqFd: its dispatcher thread injects with KVM_SIGNAL_MSI while the vCPU runs.
TEST_F(KvmUserModeIrqFdRealTest, RouteDeliversRetargetsMasksAndDrops) {
  auto partition = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(partition) << partition.error().Message();
  std::vector<Error> errors;  // written on the dispatcher thread, read after Shutdown
  // Declared after the partition (and the errors), so it shuts down, joining its dispatcher,
  // before they go.
  auto irqfd = MakeUserModeIrqFd(**partition);
  ASSERT_TRUE(irqfd) << irqfd.error().Message();
  (*irqfd)->SetErrorHandler([&errors](const Error& e) { errors.push_back(e); });

  auto driver = StartInterruptGuest(**partition);
  ASSERT_NE(driver, nullptr);
  Watchdog watchdog(driver->vcpu());

  ExpectRouteContract(**irqfd, **partition, *driver);

  ASSERT_TRUE((*irqfd)->Shutdown());  // joins the dispatcher, so its count is final
  EXPECT_EQ((*irqfd)->injected_count(), 3u);  // only the route's three MSIs went through it
  for (const Error& e : errors) ADD_FAILURE() << e.Message();
}

}  // namespace
}  // namespace virt::kvm
