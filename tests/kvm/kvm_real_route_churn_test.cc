// The route-churn stress (tests/route_churn) on real /dev/kvm: 16 threads churn kernel irqfd
// routes while the test guest's vCPU takes their MSIs and reports each vector (skipped without KVM).
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <string>
#include <thread>

#include "real_kvm_test.h"
#include "route_churn.h"

namespace virt::kvm {
namespace {

namespace churn = virt::test::churn;

int OpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// Room for every GSI's eventfd (CountFreeGsis holds them all at once).
void RaiseFdLimit() {
  rlimit l{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &l), 0);
  if (l.rlim_cur < 8192 && l.rlim_max >= 8192) {
    l.rlim_cur = 8192;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &l), 0);
  }
}

using KvmRealRouteChurnTest = RealKvmTest;

// The vCPU thread runs the mode-1 guest, which reports every interrupt's vector with one OUT:
// that is the delivery log. Each churn thread waits for each of its MSIs before the next on the
// same vector, so the LAPIC never coalesces two.
TEST_F(KvmRealRouteChurnTest, SixteenThreadsChurningKernelIrqfdsLoseDuplicateAndStrayNoMsi) {
  RaiseFdLimit();
  auto partition = NewPartition(/*irqchip=*/true);
  ASSERT_NE(partition, nullptr);
  IrqFd* irqfd = partition->irqfd();
  ASSERT_NE(irqfd, nullptr);
  std::vector<Error> reported;  // only written by route teardown, on the churn threads' own routes
  std::mutex reported_mu;
  irqfd->SetErrorHandler([&](const Error& e) {
    std::lock_guard lock(reported_mu);
    reported.push_back(e);
  });
  auto driver = StartInterruptGuest(*partition);
  ASSERT_NE(driver, nullptr);
  const size_t free_gsis = churn::CountFreeGsis(*irqfd);
  ASSERT_GT(free_gsis, 16u * 3u);
  const int fds_before = OpenFds();

  churn::DeliveryLog log;
  std::atomic<bool> stopping{false};
  std::string vcpu_error;
  std::thread vcpu([&] {
    for (;;) {
      auto v = driver->RunToVector();
      if (!v) {
        if (!stopping.load()) vcpu_error = v.error().Message();
        return;
      }
      log.RecordVector(*v);
    }
  });

  churn::RunRouteChurn(*irqfd, log, {.threads = 16, .rounds = 40});

  stopping.store(true);
  driver->vcpu().Cancel();
  vcpu.join();
  EXPECT_EQ(vcpu_error, "");
  EXPECT_EQ(OpenFds(), fds_before) << "every route's eventfd is closed";
  EXPECT_EQ(churn::CountFreeGsis(*irqfd), free_gsis) << "every GSI came back";
  for (const Error& e : reported) ADD_FAILURE() << e.Message();
}

}  // namespace
}  // namespace virt::kvm
