// KvmDirtyLog against a mocked KvmIoctl: KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG payloads, and
// one meaning with and without manual protection: a read returns and clears exactly its range.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::ElementsAre;

constexpr uint64_t kBase = 0x100000;
constexpr uint64_t kPages = 256;

class KvmDirtyLogTest : public KvmMockTest, public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    manual_ = GetParam();
    if (!manual_) fake().SetCapability(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0);
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 1, .irqchip = true});
    ASSERT_NE(part_, nullptr);
    ASSERT_EQ(fake().manual_dirty_protect(), manual_);
    ASSERT_TRUE(part_->MapMemory({0, 0x10000, Host(0x7f0000000000), MemoryFlags::kNone}));
    ASSERT_TRUE(part_->MapMemory({kBase, kPages * 4096, Host(0x7f0001000000),
                                  MemoryFlags::kDirtyLog}));
    slot_ = fake().memory_calls().back().slot;
    log_ = part_->dirty_log();
    ASSERT_NE(log_, nullptr);
  }
  void TearDown() override {
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }
  static void* Host(uint64_t a) { return reinterpret_cast<void*>(a); }
  // The page numbers (relative to `first`) whose bits are set.
  static std::vector<uint64_t> Pages(const std::vector<uint64_t>& bits) {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i < bits.size() * 64; ++i) {
      if ((bits[i / 64] >> (i % 64)) & 1) out.push_back(i);
    }
    return out;
  }

  bool manual_ = false;
  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  DirtyLog* log_ = nullptr;
  uint32_t slot_ = 0;
};

TEST_P(KvmDirtyLogTest, AReadReturnsAndClearsExactlyItsRange) {
  for (uint64_t p : {3u, 70u, 71u, 200u, 255u}) fake().MarkDirty(slot_, p);
  ASSERT_TRUE(log_->Enable());
  auto middle = log_->ReadAndClear(kBase + 64 * 4096, 64 * 4096);
  ASSERT_TRUE(middle.has_value()) << middle.error().Message();
  ASSERT_EQ(middle->size(), 1u);
  EXPECT_THAT(Pages(*middle), ElementsAre(6, 7));  // pages 70 and 71
  if (manual_) {
    ASSERT_EQ(fake().clear_calls().size(), 1u);
    const kvm_clear_dirty_log c = fake().clear_calls()[0];
    EXPECT_EQ(c.slot, slot_);
    EXPECT_EQ(c.first_page, 64u);
    EXPECT_EQ(c.num_pages, 64u);
  }
  // The pages around it kept their bits; the range's are clear.
  auto all = log_->ReadAndClear(kBase, kPages * 4096);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->size(), 4u);
  EXPECT_THAT(Pages(*all), ElementsAre(3, 200, 255));
  auto again = log_->ReadAndClear(kBase, kPages * 4096);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(Pages(*again).empty());
  // New writes show up, and only they.
  fake().MarkDirty(slot_, 9);
  EXPECT_THAT(Pages(*log_->ReadAndClear(kBase, kPages * 4096)), ElementsAre(9));
}

TEST_P(KvmDirtyLogTest, AnUnalignedRangeIsClearedWithAMaskThatSparesItsNeighbours) {
  for (uint64_t p : {60u, 61u, 62u, 63u, 64u, 65u}) fake().MarkDirty(slot_, p);
  auto r = log_->ReadAndClear(kBase + 62 * 4096, 2 * 4096);  // pages 62 and 63
  ASSERT_TRUE(r.has_value());
  EXPECT_THAT(Pages(*r), ElementsAre(0, 1));
  if (manual_) {
    const kvm_clear_dirty_log c = fake().clear_calls().back();
    EXPECT_EQ(c.first_page, 0u);
    EXPECT_EQ(c.num_pages, 64u);
  }
  EXPECT_THAT(Pages(*log_->ReadAndClear(kBase, 128 * 4096)), ElementsAre(60, 61, 64, 65));
}

TEST_P(KvmDirtyLogTest, ARangeAcrossWordBoundariesComesOutShifted) {
  for (uint64_t p : {99u, 100u, 127u, 128u, 129u, 130u, 200u}) fake().MarkDirty(slot_, p);
  auto r = log_->ReadAndClear(kBase + 100 * 4096, 30 * 4096);  // pages 100..129
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_THAT(Pages(*r), ElementsAre(0, 27, 28, 29));
  if (manual_) {
    const kvm_clear_dirty_log c = fake().clear_calls().back();
    EXPECT_EQ(c.first_page, 64u);
    EXPECT_EQ(c.num_pages, 128u);
  }
  EXPECT_THAT(Pages(*log_->ReadAndClear(kBase, kPages * 4096)), ElementsAre(99, 130, 200));
}

TEST_P(KvmDirtyLogTest, BadRangesAreRefusedWithoutAnIoctl) {
  EXPECT_CALL(mock(), GetDirtyLog(_, _)).Times(0);
  EXPECT_THAT(log_->ReadAndClear(kBase + 1, 4096), IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(log_->ReadAndClear(kBase, 0), IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(log_->ReadAndClear(kBase + kPages * 4096 - 4096, 2 * 4096),
              IsErrorCode(ErrorCode::kNotFound));  // runs past the region
  EXPECT_THAT(log_->ReadAndClear(0x50000000, 4096), IsErrorCode(ErrorCode::kNotFound));
  auto plain = log_->ReadAndClear(0, 0x10000);
  EXPECT_THAT(plain, IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(plain.error().Message(), ::testing::HasSubstr("kDirtyLog"));
}

TEST_P(KvmDirtyLogTest, AFailedReadLosesNoBit) {
  fake().MarkDirty(slot_, 5);
  fake().FailCall(manual_ ? "KVM_CLEAR_DIRTY_LOG" : "KVM_GET_DIRTY_LOG", 0, EIO);
  EXPECT_FALSE(log_->ReadAndClear(kBase, kPages * 4096).has_value());
  EXPECT_THAT(Pages(*log_->ReadAndClear(kBase, kPages * 4096)), ElementsAre(5));
}

TEST_P(KvmDirtyLogTest, AnUnmappedAndReusedSlotStartsClean) {
  fake().MarkDirty(slot_, 1);
  fake().MarkDirty(slot_, 100);
  ASSERT_TRUE(log_->ReadAndClear(kBase, 2 * 4096));  // page 1 (without manual, keeps 100)
  ASSERT_TRUE(part_->UnmapMemory(kBase, kPages * 4096));
  ASSERT_TRUE(part_->MapMemory({kBase, kPages * 4096, Host(0x7f0002000000), MemoryFlags::kDirtyLog}));
  EXPECT_EQ(fake().memory_calls().back().slot, slot_);
  EXPECT_TRUE(Pages(*log_->ReadAndClear(kBase, kPages * 4096)).empty());
}

INSTANTIATE_TEST_SUITE_P(ManualProtect, KvmDirtyLogTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "manual" : "kvm_clears"; });

}  // namespace
}  // namespace virt::kvm::test
