// MshvHypervisor: opening, probing (device missing here), partition creation flags and cleanup.
#include <sys/stat.h>

#include <cerrno>

#include "mshv_test_fixture.h"
#include "virt/backends.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::Return;

using MshvHypervisorTest = MshvTest;

bool DevMshvExists() {
  struct stat st;
  return ::stat("/dev/mshv", &st) == 0;
}

TEST(MshvProbe, ReportsDeviceMissingOnThisMachine) {
  if (DevMshvExists()) GTEST_SKIP() << "/dev/mshv exists here";
  Availability a = MshvHypervisor::Probe(MakeSystemMshvIoctl());
  EXPECT_EQ(a.why, Unavailability::kDeviceMissing);
  EXPECT_THAT(a.reason, HasSubstr("/dev/mshv"));
}

TEST(MshvProbe, DefaultRegistryListsMshvAsBuiltButMissing) {
  if (DevMshvExists()) GTEST_SKIP() << "/dev/mshv exists here";
  bool found = false;
  for (const BackendStatus& s : DefaultRegistry().Probe()) {
    if (s.name != "mshv") continue;
    found = true;
    EXPECT_EQ(s.availability.why, Unavailability::kDeviceMissing) << s.availability.reason;
  }
  EXPECT_TRUE(found);
  auto opened = DefaultRegistry().Open("mshv");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(opened.error().detail, HasSubstr("device missing"));
}

TEST_F(MshvHypervisorTest, ProbeMapsOpenErrnoToAReason) {
  const std::pair<int, Unavailability> cases[] = {
      {ENOENT, Unavailability::kDeviceMissing},
      {ENODEV, Unavailability::kDeviceMissing},
      {EACCES, Unavailability::kPermissionDenied},
      {EPERM, Unavailability::kPermissionDenied},
      {EIO, Unavailability::kOther},
  };
  for (auto [err, why] : cases) {
    fake_.FailNext("Open", 0, err);
    EXPECT_EQ(MshvHypervisor::Probe(mock_).why, why) << err;
  }
  EXPECT_EQ(MshvHypervisor::Probe(mock_).why, Unavailability::kNone);
  EXPECT_TRUE(fake_.open_fds().empty());  // the probe closed what it opened
}

TEST_F(MshvHypervisorTest, CreateOpensDevMshvAndDestructionClosesIt) {
  EXPECT_CALL(*mock_, Open(::testing::StrEq("/dev/mshv")));
  auto h = OpenHypervisor();
  EXPECT_THAT(fake_.open_fds(), ElementsAre(kMshvFd));
  EXPECT_EQ(h->name(), "mshv");
  EXPECT_CALL(*mock_, Close(kMshvFd));
  h.reset();
  EXPECT_TRUE(fake_.open_fds().empty());
}

TEST_F(MshvHypervisorTest, PartitionGetsTheLapicFlagThenIsInitialized) {
  auto h = OpenHypervisor();
  InSequence seq;
  EXPECT_CALL(*mock_, CreatePartition(kMshvFd, AllOf(Field(&mshv_create_partition::pt_flags, 1u),
                                                     Field(&mshv_create_partition::pt_isolation,
                                                           0u))));
  EXPECT_CALL(*mock_, InitializePartition(_));
  auto p = NewPartition(*h);
  ASSERT_NE(p, nullptr);
  EXPECT_NE(p->irqfd(), nullptr);
  EXPECT_TRUE(fake_.only_partition().initialized);
}

TEST_F(MshvHypervisorTest, X2apicOptionAddsItsFlag) {
  auto h = OpenHypervisor(MshvOptions{.x2apic = true});
  EXPECT_CALL(*mock_, CreatePartition(_, Field(&mshv_create_partition::pt_flags, 0x3u)));
  auto p = NewPartition(*h);
  EXPECT_EQ(fake_.only_partition().pt_flags, 0x3u);
}

TEST_F(MshvHypervisorTest, WithoutIrqchipNoLapicNoIrqFd) {
  auto h = OpenHypervisor(MshvOptions{.x2apic = true});
  auto p = NewPartition(*h, PartitionConfig{1, false});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(fake_.only_partition().pt_flags, 0u);
  EXPECT_EQ(p->irqfd(), nullptr);
  auto msi = p->RequestMsi(MsiMessage::Fixed(0, 0x30));
  ASSERT_FALSE(msi.has_value());
  EXPECT_EQ(msi.error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(MshvHypervisorTest, FailedInitializeClosesThePartitionFd) {
  auto h = OpenHypervisor();
  fake_.FailNext("InitializePartition", 0, EINVAL);
  auto p = h->CreatePartition({});
  ASSERT_FALSE(p.has_value());
  EXPECT_STREQ(p.error().operation, "MSHV_INITIALIZE_PARTITION");
  EXPECT_EQ(p.error().native_code, EINVAL);
  EXPECT_THAT(fake_.open_fds(), ElementsAre(kMshvFd));
}

TEST_F(MshvHypervisorTest, ZeroVcpusIsRejectedBeforeAnyIoctl) {
  auto h = OpenHypervisor();
  EXPECT_CALL(*mock_, CreatePartition(_, _)).Times(0);
  auto p = h->CreatePartition(PartitionConfig{0, true});
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(MshvHypervisorTest, PitIsUnavailableAndNothingIsCreated) {
  auto h = OpenHypervisor();
  EXPECT_CALL(*mock_, CreatePartition(_, _)).Times(0);
  PartitionConfig config{2, true};
  config.pit = true;
  auto p = h->CreatePartition(config);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(p.error().detail, HasSubstr("PIT"));
  EXPECT_THAT(fake_.open_fds(), ElementsAre(kMshvFd));  // only /dev/mshv: no partition fd
  EXPECT_TRUE(fake_.partitions().empty());
  // The hypervisor is still usable for a partition without the PIT.
  Verified();
  config.pit = false;
  EXPECT_NE(NewPartition(*h, config), nullptr);
}

TEST_F(MshvHypervisorTest, PitWithoutIrqchipIsAnInvalidArgument) {
  auto h = OpenHypervisor();
  EXPECT_CALL(*mock_, CreatePartition(_, _)).Times(0);
  PartitionConfig config{1, false};
  config.pit = true;
  auto p = h->CreatePartition(config);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(p.error().detail, HasSubstr("irqchip"));
  EXPECT_THAT(fake_.open_fds(), ElementsAre(kMshvFd));
}

TEST_F(MshvHypervisorTest, NoLegacyIrqLinesWithOrWithoutIrqchip) {
  auto h = OpenHypervisor();
  auto with = NewPartition(*h, PartitionConfig{1, true});
  ASSERT_NE(with, nullptr);
  EXPECT_EQ(with->irq_lines(), nullptr);  // no in-kernel IOAPIC/PIC, only the LAPIC
  EXPECT_NE(with->irqfd(), nullptr);
  auto without = NewPartition(*h, PartitionConfig{1, false});
  ASSERT_NE(without, nullptr);
  EXPECT_EQ(without->irq_lines(), nullptr);
}

TEST_F(MshvHypervisorTest, PartitionDestructionClosesItsFdWithoutPerRouteDeassign) {
  auto h = OpenHypervisor();
  auto p = NewPartition(*h);
  auto route = p->irqfd()->NewRoute();
  ASSERT_TRUE(route.has_value());
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x40)));
  const int fd = partition_fd();
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  EXPECT_CALL(*mock_, SetMsiRouting(_, _)).Times(0);
  EXPECT_CALL(*mock_, Close(fd));
  p.reset();
  auto again = (*route)->SetMsi(MsiMessage::Fixed(0, 0x41));
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kPartitionGone);
  route->reset();  // closes only the eventfd
  Verified();
}

}  // namespace
}  // namespace virt::mshv::test
