// The route-churn stress (tests/route_churn) on the KVM backend over its mock, with a simulated
// kernel irqfd delivery path fed by the KVM_IRQFD and KVM_SET_GSI_ROUTING calls the backend makes.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "route_churn.h"
#include "simulated_irqfd_kernel.h"

namespace virt::kvm::test {
namespace {

namespace churn = virt::test::churn;
using ::testing::_;

TEST_F(KvmMockTest, RouteChurnOnEightThreadsLosesDuplicatesAndStraysNoMsi) {
  EnsureFdLimit(kUsableGsis + 256);
  fake().KeepPushHistory(false);
  churn::DeliveryLog log;
  churn::SimulatedIrqfdKernel kernel(log);
  ON_CALL(mock(), SetGsiRouting(_, _))
      .WillByDefault([&](int vm_fd, const kvm_irq_routing& routing) {
        std::map<uint32_t, MsiMessage> table;
        for (uint32_t i = 0; i < routing.nr; ++i) {
          const kvm_irq_routing_entry& e = routing.entries[i];
          if (e.type != KVM_IRQ_ROUTING_MSI) continue;
          table[e.gsi] = MsiMessage{
              .address = (uint64_t{e.u.msi.address_hi} << 32) | e.u.msi.address_lo,
              .data = e.u.msi.data};
        }
        return kernel.Push(std::move(table), [&] { return fake().SetGsiRouting(vm_fd, routing); });
      });
  ON_CALL(mock(), Irqfd(_, _)).WillByDefault([&](int vm_fd, const kvm_irqfd& irqfd) {
    const auto call = [&] { return fake().Irqfd(vm_fd, irqfd); };
    const int fd = static_cast<int>(irqfd.fd);
    return (irqfd.flags & KVM_IRQFD_FLAG_DEASSIGN) ? kernel.Deassign(fd, call)
                                                    : kernel.Assign(fd, irqfd.gsi, call);
  });

  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  auto partition = NewPartition(*hv, {.vcpu_count = 1, .irqchip = true});
  ASSERT_NE(partition, nullptr);
  IrqFd* irqfd = partition->irqfd();
  ASSERT_NE(irqfd, nullptr);
  std::vector<Error> reported;
  irqfd->SetErrorHandler([&reported](const Error& e) { reported.push_back(e); });
  const int fds_before = CountOpenFds();

  churn::RunRouteChurn(*irqfd, log, {.threads = 8, .rounds = 25});

  EXPECT_EQ(kernel.unrouted(), 0u) << "an irqfd fired on a GSI the table did not route";
  EXPECT_THAT(fake().assigned_irqfds(), ::testing::IsEmpty()) << "irqfds left assigned";
  EXPECT_EQ(fake().last_table().size(), kIrqchipEntries) << "every route's entry is gone";
  EXPECT_EQ(CountOpenFds(), fds_before) << "every route's eventfd is closed";
  churn::ExpectEveryGsiFree(*irqfd, kUsableGsis);
  for (const Error& e : reported) ADD_FAILURE() << e.Message();
  partition.reset();
  hv.reset();
}

}  // namespace
}  // namespace virt::kvm::test
