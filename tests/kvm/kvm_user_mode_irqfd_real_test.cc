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

  auto route = (*irqfd)->NewRoute();
  ASSERT_TRUE(route) << route.error().Message();
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x40)));

  // Delivery.
  ASSERT_TRUE((*route)->event().Signal());
  EXPECT_EQ(Vector(driver->RunToVector()), 0x40u);

  // Retarget: the same event now raises another vector.
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x51)));
  ASSERT_TRUE((*route)->event().Signal());
  EXPECT_EQ(Vector(driver->RunToVector()), 0x51u);

  // Mask: a signal while masked is held. A lower-priority sentinel MSI proves nothing else
  // arrived (the held vector, being higher, would be taken first).
  ASSERT_TRUE((*route)->ClearMsi());
  EXPECT_FALSE((*route)->msi().has_value());
  ASSERT_TRUE((*route)->event().Signal());
  ASSERT_TRUE((*partition)->RequestMsi(MsiMessage::Fixed(0, 0x30)));
  EXPECT_EQ(Vector(driver->RunToVector()), 0x30u);

  // Unmask: the held signal is delivered, with the new target.
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x52)));
  EXPECT_EQ(Vector(driver->RunToVector()), 0x52u);

  // Drop: a device still holding the old eventfd can signal it, and nothing arrives.
  const int old_event = ::dup((*route)->event().native_handle());
  ASSERT_GE(old_event, 0);
  route->reset();
  const uint64_t one = 1;
  ASSERT_EQ(::write(old_event, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  ASSERT_TRUE((*partition)->RequestMsi(MsiMessage::Fixed(0, 0x31)));
  EXPECT_EQ(Vector(driver->RunToVector()), 0x31u);
  ::close(old_event);

  ASSERT_TRUE((*irqfd)->Shutdown());  // joins the dispatcher, so its count is final
  EXPECT_EQ((*irqfd)->injected_count(), 3u);  // only the route's three MSIs went through it
  for (const Error& e : errors) ADD_FAILURE() << e.Message();
}

}  // namespace
}  // namespace virt::kvm
