// The route-churn stress (tests/route_churn) on the MSHV backend over its fake, with a simulated
// kernel irqfd delivery path fed by the MSHV_IRQFD and MSHV_SET_MSI_ROUTING calls the backend makes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <dirent.h>

#include <map>

#include "mshv_test_fixture.h"
#include "route_churn.h"
#include "simulated_irqfd_kernel.h"

namespace virt::mshv::test {
namespace {

namespace churn = virt::test::churn;
using ::testing::_;

int OpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

using MshvRouteChurnTest = MshvTest;

TEST_F(MshvRouteChurnTest, EightThreadsChurningRoutesLoseDuplicateAndStrayNoMsi) {
  churn::DeliveryLog log;
  churn::SimulatedIrqfdKernel kernel(log);
  ON_CALL(*mock_, SetMsiRouting(_, _))
      .WillByDefault([&](int partition_fd, const mshv_user_irq_table& t) {
        std::map<uint32_t, MsiMessage> table;
        for (const mshv_user_irq_entry& e : TableEntries(t)) {
          table[e.gsi] = MsiMessage{.address = (uint64_t{e.address_hi} << 32) | e.address_lo,
                                    .data = e.data};
        }
        return kernel.Push(std::move(table), [&] { return fake_.SetMsiRouting(partition_fd, t); });
      });
  ON_CALL(*mock_, Irqfd(_, _)).WillByDefault([&](int partition_fd, const mshv_user_irqfd& args) {
    const auto call = [&] { return fake_.Irqfd(partition_fd, args); };
    return (args.flags & (1u << MSHV_IRQFD_BIT_DEASSIGN)) ? kernel.Deassign(args.fd, call)
                                                          : kernel.Assign(args.fd, args.gsi, call);
  });

  hypervisor_ = OpenHypervisor();
  ASSERT_NE(hypervisor_, nullptr);
  partition_ = NewPartition(*hypervisor_);
  ASSERT_NE(partition_, nullptr);
  IrqFd* irqfd = partition_->irqfd();
  ASSERT_NE(irqfd, nullptr);
  std::vector<Error> reported;
  irqfd->SetErrorHandler([&reported](const Error& e) { reported.push_back(e); });
  const int fds_before = OpenFds();

  churn::RunRouteChurn(*irqfd, log, {.threads = 8, .rounds = 25});

  EXPECT_EQ(kernel.unrouted(), 0u) << "an irqfd fired on a GSI the table did not route";
  EXPECT_THAT(fake_.only_partition().irqfds, ::testing::IsEmpty()) << "irqfds left assigned";
  EXPECT_THAT(fake_.only_partition().table, ::testing::IsEmpty()) << "entries left in the table";
  EXPECT_EQ(OpenFds(), fds_before) << "every route's eventfd is closed";
  churn::ExpectEveryGsiFree(*irqfd, kUsableGsis);
  for (const Error& e : reported) ADD_FAILURE() << e.Message();
  partition_.reset();
  hypervisor_.reset();
}

}  // namespace
}  // namespace virt::mshv::test
