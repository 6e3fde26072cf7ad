// Checks WhpPartition: GPA mapping flags and validation, vCPU index claims, MSI injection
// values, the IrqFd choice (triggers or user-mode dispatcher) and handle lifetime.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"

namespace virt::whp {
namespace {

using namespace std::chrono_literals;
using test::FakeWhp;

class WhpPartitionTest : public testing::Test {
 protected:
  void Open(PartitionConfig config = {.vcpu_count = 2, .irqchip = true}, WhpOptions options = {}) {
    auto h = WhpHypervisor::Create(fake_.api(), options);
    ASSERT_TRUE(h.has_value()) << h.error().Message();
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition(config);
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
  }

  void* Host(size_t offset = 0) { return memory_ + offset; }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  alignas(4096) uint8_t memory_[4 * 4096] = {};
};

TEST_F(WhpPartitionTest, MapMemoryPassesTheRegionAndFlags) {
  Open();
  ASSERT_TRUE(partition_->MapMemory({0x10000, 0x2000, Host()}).has_value());
  ASSERT_TRUE(
      partition_->MapMemory({0x20000, 0x1000, Host(0x2000), MemoryFlags::kReadOnly}).has_value());
  ASSERT_TRUE(
      partition_->MapMemory({0x30000, 0x1000, Host(0x3000), MemoryFlags::kDirtyLog}).has_value());
  const auto maps = fake_.mappings();
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps.at(0x10000).source, Host());
  EXPECT_EQ(maps.at(0x10000).size, 0x2000u);
  EXPECT_EQ(maps.at(0x10000).flags, 0x7u);  // Read | Write | Execute
  EXPECT_EQ(maps.at(0x20000).flags, 0x5u);  // Read | Execute
  EXPECT_EQ(maps.at(0x30000).flags, 0xFu);  // ... | TrackDirtyPages
}

TEST_F(WhpPartitionTest, BadRegionsAreRefusedWithoutAWhvCall) {
  Open();
  ASSERT_TRUE(partition_->MapMemory({0x10000, 0x2000, Host()}).has_value());
  fake_.ClearLog();
  auto unaligned = partition_->MapMemory({0x20800, 0x1000, Host(0x2000)});
  ASSERT_FALSE(unaligned.has_value());
  EXPECT_EQ(unaligned.error().code, ErrorCode::kInvalidArgument);
  auto overlap = partition_->MapMemory({0x11000, 0x1000, Host(0x2000)});
  ASSERT_FALSE(overlap.has_value());
  EXPECT_EQ(overlap.error().code, ErrorCode::kOverlap);
  auto not_mapped = partition_->UnmapMemory(0x10000, 0x1000);  // not the exact range
  ASSERT_FALSE(not_mapped.has_value());
  EXPECT_EQ(not_mapped.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(fake_.log().empty());
  EXPECT_EQ(fake_.mappings().size(), 1u);
}

TEST_F(WhpPartitionTest, AFailedMapOrUnmapLeavesTheMapAsItWas) {
  Open();
  fake_.FailNext("MapGpaRange");
  ASSERT_FALSE(partition_->MapMemory({0x10000, 0x1000, Host()}).has_value());
  ASSERT_TRUE(partition_->MapMemory({0x10000, 0x1000, Host()}).has_value());  // not "overlap"
  fake_.FailNext("UnmapGpaRange");
  ASSERT_FALSE(partition_->UnmapMemory(0x10000, 0x1000).has_value());
  ASSERT_TRUE(partition_->UnmapMemory(0x10000, 0x1000).has_value());
  EXPECT_TRUE(fake_.mappings().empty());
}

TEST_F(WhpPartitionTest, VcpuIndicesAreCheckedAndReusable) {
  Open();
  auto out_of_range = partition_->CreateVcpu(2);
  ASSERT_FALSE(out_of_range.has_value());
  EXPECT_EQ(out_of_range.error().code, ErrorCode::kInvalidArgument);
  auto first = partition_->CreateVcpu(1);
  ASSERT_TRUE(first.has_value());
  auto twice = partition_->CreateVcpu(1);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, ErrorCode::kFailedPrecondition);
  first->reset();
  EXPECT_TRUE(fake_.live_vps().empty());
  EXPECT_TRUE(partition_->CreateVcpu(1).has_value());
}

TEST_F(WhpPartitionTest, AFailedVcpuCreationReleasesItsIndex) {
  Open();
  fake_.FailNext("CreateVirtualProcessor");
  ASSERT_FALSE(partition_->CreateVcpu(0).has_value());
  EXPECT_TRUE(partition_->CreateVcpu(0).has_value());
}

TEST_F(WhpPartitionTest, AVcpuKeepsThePartitionHandleAlive) {
  Open();
  auto vcpu = partition_->CreateVcpu(0);
  ASSERT_TRUE(vcpu.has_value());
  partition_.reset();
  EXPECT_EQ(fake_.live_partitions().size(), 1u);  // the vCPU still uses it
  auto exit = (*vcpu)->Run();                     // and can still run
  ASSERT_TRUE(exit.has_value());
  fake_.ClearLog();
  vcpu->reset();
  EXPECT_EQ(fake_.log(), (std::vector<std::string>{"DeleteVirtualProcessor", "DeletePartition"}));
  fake_.ExpectNothingLeaked();
}

TEST_F(WhpPartitionTest, RequestMsiSendsTheDecodedControl) {
  Open();
  auto delivered = partition_->RequestMsi(MsiMessage::Fixed(1, 0x51));
  ASSERT_TRUE(delivered.has_value()) << delivered.error().Message();
  EXPECT_TRUE(*delivered);
  const auto requested = fake_.requested();
  ASSERT_EQ(requested.size(), 1u);
  EXPECT_EQ(requested[0].Type, uint64_t{WHvX64InterruptTypeFixed});
  EXPECT_EQ(requested[0].Destination, 1u);
  EXPECT_EQ(requested[0].Vector, 0x51u);
}

TEST_F(WhpPartitionTest, RequestMsiRefusesBadMsisAndPartitionsWithoutApic) {
  Open();
  auto bad = partition_->RequestMsi({.address = 0xFED00000, .data = 0x30});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake_.requested().empty());

  FakeWhp other;
  auto h = WhpHypervisor::Create(other.api());
  ASSERT_TRUE(h.has_value());
  auto no_apic = (*h)->CreatePartition({.vcpu_count = 1, .irqchip = false});
  ASSERT_TRUE(no_apic.has_value());
  auto refused = (*no_apic)->RequestMsi(MsiMessage::Fixed(0, 0x30));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(WhpPartitionTest, RequestMsiReportsTheHresult) {
  Open();
  fake_.FailNext("RequestInterrupt", kHrInvalidArg);
  auto failed = partition_->RequestMsi(MsiMessage::Fixed(0, 0x30));
  ASSERT_FALSE(failed.has_value());
  EXPECT_STREQ(failed.error().operation, "WHvRequestInterrupt");
}

TEST_F(WhpPartitionTest, WithTriggersRoutesUseThem) {
  Open();
  IrqFd* irqfd = partition_->irqfd();
  ASSERT_NE(irqfd, nullptr);
  auto route = irqfd->NewRoute();
  ASSERT_TRUE(route.has_value()) << route.error().Message();
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x44)).has_value());
  ASSERT_TRUE((*route)->event().Signal().has_value());
  const auto delivered = fake_.delivered();
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].Vector, 0x44u);
  EXPECT_TRUE(fake_.requested().empty());  // no user-mode hop
}

TEST_F(WhpPartitionTest, WithoutTriggersTheUserModeDispatcherInjects) {
  fake_.set_has_triggers(false);
  Open();
  IrqFd* irqfd = partition_->irqfd();
  ASSERT_NE(irqfd, nullptr);
  auto route = irqfd->NewRoute();
  ASSERT_TRUE(route.has_value()) << route.error().Message();
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(1, 0x45)).has_value());
  ASSERT_TRUE((*route)->event().Signal().has_value());
  ASSERT_TRUE(fake_.WaitForRequested(1, 10s));
  const auto requested = fake_.requested();
  EXPECT_EQ(requested[0].Vector, 0x45u);
  EXPECT_EQ(requested[0].Destination, 1u);
  EXPECT_TRUE(fake_.triggers().empty());
}

TEST_F(WhpPartitionTest, OptionsCanForceTheUserModeDispatcher) {
  Open({.vcpu_count = 1, .irqchip = true}, {.use_triggers = false});
  auto route = partition_->irqfd()->NewRoute();
  ASSERT_TRUE(route.has_value());
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x46)).has_value());
  ASSERT_TRUE((*route)->event().Signal().has_value());
  ASSERT_TRUE(fake_.WaitForRequested(1, 10s));
  EXPECT_TRUE(fake_.triggers().empty());
}

TEST_F(WhpPartitionTest, RoutesOutlivingThePartitionFailCleanly) {
  for (bool triggers : {true, false}) {
    SCOPED_TRACE(triggers ? "triggers" : "user mode");
    FakeWhp fake;
    fake.set_has_triggers(triggers);
    auto h = WhpHypervisor::Create(fake.api());
    ASSERT_TRUE(h.has_value());
    auto partition = (*h)->CreatePartition({});
    ASSERT_TRUE(partition.has_value());
    auto route = (*partition)->irqfd()->NewRoute();
    ASSERT_TRUE(route.has_value());
    ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(0, 0x47)).has_value());
    partition->reset();
    auto after = (*route)->SetMsi(MsiMessage::Fixed(0, 0x48));
    ASSERT_FALSE(after.has_value());
    EXPECT_EQ(after.error().code, ErrorCode::kPartitionGone);
    route->reset();
    fake.ExpectNothingLeaked();
  }
}

}  // namespace
}  // namespace virt::whp
