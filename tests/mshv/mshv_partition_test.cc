// MshvPartition: MSHV_SET_GUEST_MEMORY bytes and validation, vCPU creation, RequestMsi hypercall.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::Return;

class MshvPartitionTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{2, true});
    memory_ = static_cast<uint8_t*>(std::aligned_alloc(4096, 16 * 4096));
  }
  void TearDown() override {
    partition_.reset();
    std::free(memory_);
    MshvTest::TearDown();
  }
  MemoryRegion Region(uint64_t gpa, uint64_t pages, size_t host_page = 0) {
    return MemoryRegion{gpa, pages * 4096, memory_ + host_page * 4096, MemoryFlags::kNone};
  }
  uint64_t Host(size_t page = 0) { return reinterpret_cast<uintptr_t>(memory_ + page * 4096); }

  uint8_t* memory_ = nullptr;
};

auto RegionIs(uint64_t size, uint64_t pfn, uint64_t host, uint8_t flags) {
  return AllOf(Field(&mshv_user_mem_region::size, size),
               Field(&mshv_user_mem_region::guest_pfn, pfn),
               Field(&mshv_user_mem_region::userspace_addr, host),
               Field(&mshv_user_mem_region::flags, flags));
}

TEST_F(MshvPartitionTest, MapSendsPfnHostAndWritableExecutableFlags) {
  EXPECT_CALL(*mock_, SetGuestMemory(partition_fd(), RegionIs(0x3000, 0x100, Host(), 0x3)));
  EXPECT_TRUE(partition_->MapMemory(Region(0x100000, 3)));
}

TEST_F(MshvPartitionTest, ReadOnlyMapsExecutableOnly) {
  EXPECT_CALL(*mock_, SetGuestMemory(_, RegionIs(0x1000, 0xFEC00, Host(1), 0x2)));
  MemoryRegion r = Region(0xFEC00000, 1, 1);
  r.flags = MemoryFlags::kReadOnly;
  EXPECT_TRUE(partition_->MapMemory(r));
}

TEST_F(MshvPartitionTest, UnmapRepeatsTheMappingWithOnlyTheUnmapFlag) {
  ASSERT_TRUE(partition_->MapMemory(Region(0x200000, 2, 4)));
  EXPECT_CALL(*mock_, SetGuestMemory(_, RegionIs(0x2000, 0x200, Host(4), 0x4)));
  EXPECT_TRUE(partition_->UnmapMemory(0x200000, 0x2000));
  EXPECT_TRUE(fake_.only_partition().regions.empty());
}

TEST_F(MshvPartitionTest, InvalidRegionsFailBeforeAnyIoctl) {
  EXPECT_CALL(*mock_, SetGuestMemory(_, _)).Times(0);
  MemoryRegion bad[] = {
      Region(0x1000, 0),                                       // empty
      Region(0x1800, 1),                                       // unaligned guest
      MemoryRegion{0x1000, 0x800, memory_, MemoryFlags::kNone},  // unaligned size
      MemoryRegion{0x1000, 0x1000, memory_ + 8, MemoryFlags::kNone},
      MemoryRegion{0x1000, 0x1000, nullptr, MemoryFlags::kNone},
      MemoryRegion{0xFFFFFFFFFFFFF000ull, 0x2000, memory_, MemoryFlags::kNone},  // wraps
  };
  for (const MemoryRegion& r : bad) {
    Status s = partition_->MapMemory(r);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument) << s.error().Message();
  }
}

TEST_F(MshvPartitionTest, OverlapsAreRejected) {
  ASSERT_TRUE(partition_->MapMemory(Region(0x10000, 4)));  // [0x10000, 0x14000)
  EXPECT_CALL(*mock_, SetGuestMemory(_, _)).Times(0);
  for (uint64_t gpa : {0x10000ull, 0xF000ull, 0x13000ull, 0x11000ull}) {
    Status s = partition_->MapMemory(Region(gpa, 2, 8));
    ASSERT_FALSE(s.has_value()) << std::hex << gpa;
    EXPECT_EQ(s.error().code, ErrorCode::kOverlap);
  }
}

TEST_F(MshvPartitionTest, AdjacentRegionsAreFine) {
  ASSERT_TRUE(partition_->MapMemory(Region(0x10000, 4)));
  EXPECT_TRUE(partition_->MapMemory(Region(0xE000, 2, 4)));
  EXPECT_TRUE(partition_->MapMemory(Region(0x14000, 1, 6)));
  EXPECT_EQ(fake_.only_partition().regions.size(), 3u);
}

TEST_F(MshvPartitionTest, UnmapMustMatchExactly) {
  ASSERT_TRUE(partition_->MapMemory(Region(0x10000, 4)));
  EXPECT_CALL(*mock_, SetGuestMemory(_, _)).Times(0);
  for (auto [gpa, size] : {std::pair<uint64_t, uint64_t>{0x10000, 0x1000}, {0x11000, 0x3000},
                           {0x20000, 0x4000}}) {
    Status s = partition_->UnmapMemory(gpa, size);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  }
}

TEST_F(MshvPartitionTest, FailedMapLeavesNothingBehind) {
  fake_.FailNext("SetGuestMemory", 0, ENOMEM);
  Status s = partition_->MapMemory(Region(0x10000, 1));
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "MSHV_SET_GUEST_MEMORY");
  EXPECT_EQ(s.error().native_code, ENOMEM);
  EXPECT_TRUE(partition_->MapMemory(Region(0x10000, 1)));  // not an overlap with a ghost
}

TEST_F(MshvPartitionTest, FailedUnmapKeepsTheRegion) {
  ASSERT_TRUE(partition_->MapMemory(Region(0x10000, 1)));
  fake_.FailNext("SetGuestMemory", 0, EBUSY);
  EXPECT_FALSE(partition_->UnmapMemory(0x10000, 0x1000).has_value());
  EXPECT_TRUE(partition_->UnmapMemory(0x10000, 0x1000));
}

TEST_F(MshvPartitionTest, CreateVcpuSendsTheIndexOnce) {
  EXPECT_CALL(*mock_, CreateVp(partition_fd(), Field(&mshv_create_vp::vp_index, 1u)));
  auto v = partition_->CreateVcpu(1);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ((*v)->index(), 1u);
  auto twice = partition_->CreateVcpu(1);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, ErrorCode::kFailedPrecondition);
  auto out_of_range = partition_->CreateVcpu(2);
  ASSERT_FALSE(out_of_range.has_value());
  EXPECT_EQ(out_of_range.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(MshvPartitionTest, FailedCreateVpCanBeRetried) {
  fake_.FailNext("CreateVp", 0, ENOMEM);
  EXPECT_FALSE(partition_->CreateVcpu(0).has_value());
  EXPECT_TRUE(partition_->CreateVcpu(0).has_value());
}

TEST_F(MshvPartitionTest, VcpuDestructionClosesItsFd) {
  auto v = partition_->CreateVcpu(0);
  ASSERT_TRUE(v.has_value());
  const int vp_fd = fake_.vps().begin()->first;
  EXPECT_CALL(*mock_, Close(vp_fd));
  v->reset();
  EXPECT_TRUE(fake_.vps().empty());
  Verified();
}

TEST_F(MshvPartitionTest, RequestMsiAssertsTheDecodedInterrupt) {
  // Lowest priority, level-triggered, asserted, logical destination 3, vector 0x31.
  const MsiMessage msi{0xFEE0300C, 0xC131};
  auto delivered = partition_->RequestMsi(msi);
  ASSERT_TRUE(delivered.has_value()) << delivered.error().Message();
  EXPECT_TRUE(*delivered);
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& rec = fake_.hvcalls()[0];
  EXPECT_EQ(rec.fd, partition_fd());
  EXPECT_EQ(rec.call.code, 0x0094);
  EXPECT_EQ(rec.call.reps, 0);
  EXPECT_EQ(rec.call.in_sz, 32);
  EXPECT_EQ(rec.call.out_sz, 0);
  uint8_t want[32] = {};
  PutLe(want, 8, 1 | (1ull << 32) | (1ull << 33), 8);  // LOWEST_PRIORITY | level | logical
  PutLe(want, 16, 3, 8);                               // destination APIC ID
  PutLe(want, 24, 0x31, 4);                            // vector; VTL 0
  ASSERT_EQ(rec.input.size(), 32u);
  EXPECT_EQ(0, std::memcmp(rec.input.data(), want, 32));
}

TEST_F(MshvPartitionTest, RequestMsiFixedEdgePhysical) {
  ASSERT_TRUE(partition_->RequestMsi(MsiMessage::Fixed(7, 0x40)).has_value());
  const HvcallRecord& rec = fake_.hvcalls().at(0);
  uint8_t want[32] = {};
  PutLe(want, 16, 7, 8);
  PutLe(want, 24, 0x40, 4);
  EXPECT_EQ(0, std::memcmp(rec.input.data(), want, 32));
}

TEST_F(MshvPartitionTest, RequestMsiRejectsNonMsiAddressesWithoutAHypercall) {
  auto r = partition_->RequestMsi(MsiMessage{0xFED00000, 0x30});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fake_.hvcalls().empty());
}

TEST_F(MshvPartitionTest, RequestMsiReportsTheHypervisorStatus) {
  fake_.FailNext("RootHvcall", 0, EINVAL, /*hv_status=*/0x0005);
  auto r = partition_->RequestMsi(MsiMessage::Fixed(0, 0x30));
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "HVCALL_ASSERT_VIRTUAL_INTERRUPT");
  EXPECT_EQ(r.error().domain, NativeDomain::kHvStatus);
  EXPECT_EQ(r.error().native_code, 5);
  EXPECT_THAT(r.error().Message(), ::testing::HasSubstr("MSHV_ROOT_HVCALL"));
}

TEST_F(MshvPartitionTest, RequestMsiWithoutStatusKeepsErrno) {
  fake_.FailNext("RootHvcall", 0, EFAULT);
  auto r = partition_->RequestMsi(MsiMessage::Fixed(0, 0x30));
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "HVCALL_ASSERT_VIRTUAL_INTERRUPT");
  EXPECT_EQ(r.error().domain, NativeDomain::kErrno);
  EXPECT_EQ(r.error().native_code, EFAULT);
}

}  // namespace
}  // namespace virt::mshv::test
