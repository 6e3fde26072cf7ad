// KvmIrqLines against a mocked KvmIoctl: KVM_IRQ_LINE payloads, line routes (edge and level with
// resample) with exact KVM_IRQFD payloads, teardown, errors that leave nothing behind.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::IsEmpty;

MATCHER_P2(LevelIs, irq, level, "") { return arg.irq == irq && arg.level == level; }

class KvmIrqLinesTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 1, .irqchip = true});
    ASSERT_NE(part_, nullptr);
    lines_ = part_->irq_lines();
    ASSERT_NE(lines_, nullptr);
  }
  void TearDown() override {
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  IrqLines* lines_ = nullptr;
};

TEST_F(KvmIrqLinesTest, SetLevelSendsKvmIrqLine) {
  EXPECT_EQ(lines_->line_count(), 24u);
  {
    InSequence seq;
    EXPECT_CALL(mock(), IrqLine(kVmFd, LevelIs(4u, 1u)));
    EXPECT_CALL(mock(), IrqLine(kVmFd, LevelIs(4u, 0u)));
    EXPECT_CALL(mock(), IrqLine(kVmFd, LevelIs(23u, 1u)));
  }
  ASSERT_TRUE(lines_->SetLevel(4, true));
  ASSERT_TRUE(lines_->SetLevel(4, false));
  ASSERT_TRUE(lines_->SetLevel(23, true));
}

TEST_F(KvmIrqLinesTest, BadLinesAreRefusedWithoutAnIoctl) {
  EXPECT_CALL(mock(), IrqLine(_, _)).Times(0);
  EXPECT_CALL(mock(), Irqfd(_, _)).Times(0);
  EXPECT_THAT(lines_->SetLevel(24, true), IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(lines_->NewLineRoute(24, LineTrigger::kEdge),
              IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(lines_->NewLineRoute(UINT32_MAX, LineTrigger::kLevelResample),
              IsErrorCode(ErrorCode::kInvalidArgument));
}

TEST_F(KvmIrqLinesTest, AnEdgeRouteIsAPlainIrqfdOnThePinsGsi) {
  const int fds = CountOpenFds();
  const uint64_t pushes = fake().pushes();
  auto route = lines_->NewLineRoute(7, LineTrigger::kEdge);
  ASSERT_TRUE(route.has_value()) << route.error().Message();
  EXPECT_EQ((*route)->line(), 7u);
  EXPECT_EQ((*route)->trigger(), LineTrigger::kEdge);
  EXPECT_EQ((*route)->resample_event(), nullptr);
  EXPECT_EQ(CountOpenFds(), fds + 1);
  const int fd = (*route)->event().native_handle();
  ASSERT_EQ(fake().irqfd_calls().size(), 1u);
  const kvm_irqfd a = fake().irqfd_calls()[0];
  EXPECT_EQ(a.fd, static_cast<uint32_t>(fd));
  EXPECT_EQ(a.gsi, 7u);
  EXPECT_EQ(a.flags, 0u);
  EXPECT_EQ(a.resamplefd, 0u);
  EXPECT_TRUE(fake().irqfd_assigned(fd, 7));
  EXPECT_EQ(fake().pushes(), pushes) << "a pin route needs no routing push";

  ASSERT_TRUE((*route)->Release());
  const kvm_irqfd d = fake().irqfd_calls().back();
  EXPECT_EQ(d.fd, static_cast<uint32_t>(fd));
  EXPECT_EQ(d.gsi, 7u);
  EXPECT_EQ(d.flags, static_cast<uint32_t>(KVM_IRQFD_FLAG_DEASSIGN));
  EXPECT_FALSE(fake().irqfd_assigned(fd, 7));
  EXPECT_THAT((*route)->Release(), IsErrorCode(ErrorCode::kAlreadyReleased));
  route->reset();
  EXPECT_EQ(CountOpenFds(), fds);
  EXPECT_EQ(fake().irqfd_calls().size(), 2u) << "a released route is not deassigned again";
}

TEST_F(KvmIrqLinesTest, ALevelRouteRegistersItsResampleEvent) {
  auto route = lines_->NewLineRoute(10, LineTrigger::kLevelResample);
  ASSERT_TRUE(route.has_value()) << route.error().Message();
  const Event* resample = (*route)->resample_event();
  ASSERT_NE(resample, nullptr);
  ASSERT_TRUE(resample->valid());
  const int fd = (*route)->event().native_handle();
  EXPECT_NE(resample->native_handle(), fd);
  const kvm_irqfd a = fake().irqfd_calls().back();
  EXPECT_EQ(a.fd, static_cast<uint32_t>(fd));
  EXPECT_EQ(a.gsi, 10u);
  EXPECT_EQ(a.flags, static_cast<uint32_t>(KVM_IRQFD_FLAG_RESAMPLE));
  EXPECT_EQ(a.resamplefd, static_cast<uint32_t>(resample->native_handle()));
  EXPECT_EQ(fake().resamplers().at(fd), static_cast<uint32_t>(resample->native_handle()));
  // Destruction deassigns (DEASSIGN alone: KVM finds the irqfd by eventfd and GSI).
  EXPECT_CALL(mock(), Irqfd(kVmFd, AllOf(Field(&kvm_irqfd::fd, static_cast<uint32_t>(fd)),
                                         Field(&kvm_irqfd::gsi, 10u),
                                         Field(&kvm_irqfd::flags,
                                               static_cast<uint32_t>(KVM_IRQFD_FLAG_DEASSIGN)))));
  route->reset();
  EXPECT_THAT(fake().resamplers(), IsEmpty());
}

TEST_F(KvmIrqLinesTest, SeveralRoutesMayShareALine) {
  auto a = lines_->NewLineRoute(3, LineTrigger::kLevelResample);
  auto b = lines_->NewLineRoute(3, LineTrigger::kLevelResample);
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(fake().irqfd_assigned((*a)->event().native_handle(), 3));
  EXPECT_TRUE(fake().irqfd_assigned((*b)->event().native_handle(), 3));
  a->reset();
  EXPECT_TRUE(fake().irqfd_assigned((*b)->event().native_handle(), 3));
}

TEST_F(KvmIrqLinesTest, AFailedAssignLeavesNoEventOpen) {
  const int fds = CountOpenFds();
  fake().FailCall("KVM_IRQFD", 0, EBUSY);
  auto route = lines_->NewLineRoute(5, LineTrigger::kLevelResample);
  ASSERT_FALSE(route.has_value());
  EXPECT_STREQ(route.error().operation, "KVM_IRQFD");
  EXPECT_EQ(route.error().native_code, EBUSY);
  EXPECT_EQ(CountOpenFds(), fds);
  EXPECT_THAT(fake().assigned_irqfds(), IsEmpty());
}

TEST_F(KvmIrqLinesTest, AFailedTeardownGoesToTheErrorHandler) {
  std::vector<Error> reported;
  lines_->SetErrorHandler([&reported](const Error& e) { reported.push_back(e); });
  auto route = lines_->NewLineRoute(6, LineTrigger::kEdge);
  ASSERT_TRUE(route.has_value());
  const int fd = (*route)->event().native_handle();
  fake().FailCall("KVM_IRQFD", 0, EIO);
  route->reset();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_STREQ(reported[0].operation, "KVM_IRQFD");
  EXPECT_EQ(reported[0].native_code, EIO);
  fake().EventClosed(fd);  // the kernel lets go of an irqfd whose eventfd closed
}

TEST_F(KvmIrqLinesTest, RoutesOutlivingThePartitionFailWithPartitionGone) {
  auto route = lines_->NewLineRoute(2, LineTrigger::kLevelResample);
  ASSERT_TRUE(route.has_value());
  const size_t calls = fake().irqfd_calls().size();
  part_.reset();  // closes the VM fd: the kernel drops the irqfd itself
  EXPECT_THAT((*route)->Release(), IsErrorCode(ErrorCode::kPartitionGone));
  EXPECT_THAT((*route)->Release(), IsErrorCode(ErrorCode::kAlreadyReleased));
  route->reset();
  EXPECT_EQ(fake().irqfd_calls().size(), calls) << "no ioctl on a closed VM fd";
}

TEST_F(KvmIrqLinesTest, WithoutResampleSupportLevelRoutesAreUnavailable) {
  part_.reset();
  hv_.reset();
  fake().SetCapability(KVM_CAP_IRQFD_RESAMPLE, 0);
  hv_ = NewHypervisor();
  part_ = NewPartition(*hv_, {.vcpu_count = 1, .irqchip = true});
  IrqLines* lines = part_->irq_lines();
  ASSERT_NE(lines, nullptr);
  auto level = lines->NewLineRoute(1, LineTrigger::kLevelResample);
  EXPECT_THAT(level, IsErrorCode(ErrorCode::kUnavailable));
  EXPECT_THAT(level.error().Message(), HasSubstr("KVM_CAP_IRQFD_RESAMPLE"));
  EXPECT_TRUE(lines->NewLineRoute(1, LineTrigger::kEdge).has_value());
}

TEST_F(KvmIrqLinesTest, NoIrqchipNoLines) {
  auto p = hv_->CreatePartition({.vcpu_count = 1, .irqchip = false});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)->irq_lines(), nullptr);
}

TEST_F(KvmIrqLinesTest, LineRoutesSurviveMsiRoutingPushes) {
  auto line = lines_->NewLineRoute(9, LineTrigger::kLevelResample);
  ASSERT_TRUE(line.has_value());
  auto msi = part_->irqfd()->NewRoute();
  ASSERT_TRUE(msi.has_value());
  ASSERT_TRUE((*msi)->SetMsi(MsiMessage::Fixed(0, 0x40)));  // a whole-table push
  EXPECT_TRUE(HasIoapicEntry(fake().last_table(), 9)) << "the push dropped the pin route";
  EXPECT_THAT(fake().problems(), IsEmpty());
}

TEST_F(KvmIrqLinesTest, ConcurrentRoutesAndLevelsFromManyThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint32_t t = 0; t < 4; ++t) {
    threads.emplace_back([this, t, &failures] {
      for (int i = 0; i < 50; ++i) {
        auto r = lines_->NewLineRoute(t * 5, i % 2 ? LineTrigger::kEdge : LineTrigger::kLevelResample);
        if (!r || !lines_->SetLevel(t * 5 + 1, i % 2 == 0) || !(*r)->event().Signal()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(fake().assigned_irqfds(), IsEmpty());
  EXPECT_EQ(fake().irq_lines().size(), 200u);
}

}  // namespace
}  // namespace virt::kvm::test
