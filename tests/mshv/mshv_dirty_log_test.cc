// MshvDirtyLog: HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING and MSHV_GET_GPAP_ACCESS_BITMAP
// with their exact values, DirtyLog's per-range bit meaning, and the refusals.
#include <cstdlib>

#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Pointee;

constexpr uint64_t kBase = 0x100000;  // guest page 0x100
constexpr uint64_t kPages = 130;      // three bitmap words, the last partly used

class MshvDirtyLogTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{1, true});
    memory_ = static_cast<uint8_t*>(std::aligned_alloc(4096, (kPages + 4) * 4096));
    ASSERT_TRUE(partition_->MapMemory({kBase, kPages * 4096, memory_, MemoryFlags::kDirtyLog}));
    ASSERT_TRUE(partition_->MapMemory(
        {0x400000, 4 * 4096, memory_ + kPages * 4096, MemoryFlags::kNone}));
  }
  void TearDown() override {
    partition_.reset();
    std::free(memory_);
    MshvTest::TearDown();
  }
  DirtyLog& log() { return *partition_->dirty_log(); }
  FakeMshv::Partition& kernel() { return fake_.only_partition(); }
  void Dirty(std::initializer_list<uint64_t> pages) {
    for (uint64_t i : pages) kernel().dirty_pfns.insert(kBase / 4096 + i);
  }
  std::vector<uint64_t> Read(uint64_t first_page, uint64_t pages) {
    auto r = log().ReadAndClear(kBase + first_page * 4096, pages * 4096);
    EXPECT_TRUE(r.has_value()) << r.error().Message();
    return r ? *r : std::vector<uint64_t>{};
  }
  uint8_t* memory_ = nullptr;
};

TEST_F(MshvDirtyLogTest, ADirtyLogRegionIsMappedWithTheSameFlagsAsAnyOther) {
  const mshv_user_mem_region& r = kernel().regions.at(kBase / 4096);
  EXPECT_EQ(r.flags, (1u << MSHV_SET_MEM_BIT_WRITABLE) | (1u << MSHV_SET_MEM_BIT_EXECUTABLE));
  EXPECT_EQ(r.size, kPages * 4096);
}

TEST_F(MshvDirtyLogTest, EnableSetsGpaPageAccessTrackingOnceOnThePartitionFd) {
  fake_.hvcalls().clear();
  ASSERT_TRUE(log().Enable());
  ASSERT_TRUE(log().Enable());
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& r = fake_.hvcalls()[0];
  EXPECT_EQ(r.fd, partition_fd());
  EXPECT_EQ(r.call.code, 0x0045);
  EXPECT_EQ(r.call.in_sz, 24);
  EXPECT_EQ(r.call.out_sz, 0);
  std::vector<uint8_t> want(24, 0);
  PutLe(want.data(), 8, 0x00050005, 4);
  PutLe(want.data(), 16, 1, 8);
  EXPECT_EQ(r.input, want);
  EXPECT_EQ(kernel().properties[HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING], 1u);
}

TEST_F(MshvDirtyLogTest, AFailedEnableIsTriedAgainByTheNextOne) {
  fake_.FailNext("RootHvcall", 0, EIO);
  Status s = log().Enable();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "HVCALL_SET_PARTITION_PROPERTY");
  EXPECT_EQ(log().ReadAndClear(kBase, 4096).error().code, ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(log().Enable());
  EXPECT_EQ(kernel().properties[HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING], 1u);
}

TEST_F(MshvDirtyLogTest, AReadBeforeEnableIsRefusedWithoutTheIoctl) {
  EXPECT_CALL(*mock_, GetGpapAccessBitmap(_, _)).Times(0);
  auto r = log().ReadAndClear(kBase, 4096);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_THAT(r.error().detail, HasSubstr("Enable"));
  Verified();
}

TEST_F(MshvDirtyLogTest, AReadIsOneIoctlOfTheDirtyBitsWithClear) {
  ASSERT_TRUE(log().Enable());
  Dirty({0, 3, 63, 64, 129});
  EXPECT_CALL(*mock_, GetGpapAccessBitmap(
                          partition_fd(),
                          Pointee(AllOf(Field(&mshv_gpap_access_bitmap::access_type, 1),
                                        Field(&mshv_gpap_access_bitmap::access_op, 1),
                                        Field(&mshv_gpap_access_bitmap::page_count, kPages),
                                        Field(&mshv_gpap_access_bitmap::gpap_base, 0x100u)))));
  std::vector<uint64_t> bits = Read(0, kPages);
  Verified();
  EXPECT_EQ(bits, (std::vector<uint64_t>{(1ull << 0) | (1ull << 3) | (1ull << 63), 1, 2}));
  for (uint8_t b : kernel().bitmap_reads.back().rsvd) EXPECT_EQ(b, 0);
  EXPECT_TRUE(kernel().dirty_pfns.empty());
  EXPECT_EQ(Read(0, kPages), (std::vector<uint64_t>{0, 0, 0}));
}

TEST_F(MshvDirtyLogTest, AReadClearsOnlyItsRangeSoPiecewiseReadsLoseNothing) {
  ASSERT_TRUE(log().Enable());
  Dirty({1, 5, 70, 100, 128});
  // The middle first: pages 64..99 (bit 6 is page 70); the rest keep their bits.
  EXPECT_EQ(Read(64, 36), (std::vector<uint64_t>{1ull << 6}));
  EXPECT_EQ(Read(0, 64), (std::vector<uint64_t>{(1ull << 1) | (1ull << 5)}));
  EXPECT_EQ(Read(100, 30), (std::vector<uint64_t>{(1ull << 0) | (1ull << 28)}));
  EXPECT_EQ(Read(0, kPages), (std::vector<uint64_t>{0, 0, 0}));
  Dirty({2});  // written again since the read
  EXPECT_EQ(Read(0, 3), (std::vector<uint64_t>{1ull << 2}));
}

TEST_F(MshvDirtyLogTest, BadRangesAreRefusedBeforeTheIoctl) {
  ASSERT_TRUE(log().Enable());
  EXPECT_CALL(*mock_, GetGpapAccessBitmap(_, _)).Times(0);
  auto code = [&](uint64_t gpa, uint64_t size) {
    return log().ReadAndClear(gpa, size).error().code;
  };
  EXPECT_EQ(code(kBase + 1, 4096), ErrorCode::kInvalidArgument);    // unaligned
  EXPECT_EQ(code(kBase, 100), ErrorCode::kInvalidArgument);         // unaligned size
  EXPECT_EQ(code(kBase, 0), ErrorCode::kInvalidArgument);           // empty
  EXPECT_EQ(code(0x400000, 4096), ErrorCode::kInvalidArgument);     // no kDirtyLog
  EXPECT_EQ(code(kBase, (kPages + 1) * 4096), ErrorCode::kNotFound);  // past the region
  EXPECT_EQ(code(0x800000, 4096), ErrorCode::kNotFound);            // nothing mapped
  Verified();
}

TEST_F(MshvDirtyLogTest, AFailedIoctlIsReportedWithItsName) {
  ASSERT_TRUE(log().Enable());
  fake_.FailNext("GetGpapAccessBitmap", 0, EFAULT);
  auto r = log().ReadAndClear(kBase, 4096);
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "MSHV_GET_GPAP_ACCESS_BITMAP");
  EXPECT_EQ(r.error().native_code, EFAULT);
}

}  // namespace
}  // namespace virt::mshv::test
