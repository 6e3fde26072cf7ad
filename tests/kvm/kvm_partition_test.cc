// KvmPartition against a mocked KvmIoctl: memory slot payloads and validation, vCPU creation rules, KVM_SIGNAL_MSI.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::HasSubstr;

class KvmPartitionTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 2, .irqchip = true});
    ASSERT_NE(part_, nullptr);
  }
  void TearDown() override {
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }

  static void* Host(uint64_t address) { return reinterpret_cast<void*>(address); }

  // Maps and returns the payload KVM received.
  kvm_userspace_memory_region MapOk(uint64_t gpa, uint64_t size, uint64_t host,
                                    MemoryFlags flags = MemoryFlags::kNone) {
    const size_t before = fake().memory_calls().size();
    Status s = part_->MapMemory({gpa, size, Host(host), flags});
    EXPECT_TRUE(s.has_value()) << s.error().Message();
    auto calls = fake().memory_calls();
    EXPECT_EQ(calls.size(), before + 1);
    return calls.empty() ? kvm_userspace_memory_region{} : calls.back();
  }

  // Expects `region` to be refused with `code` without any ioctl.
  void ExpectRefused(const MemoryRegion& region, ErrorCode code) {
    const size_t before = fake().call_count();
    Status s = part_->MapMemory(region);
    EXPECT_THAT(s, IsErrorCode(code)) << std::hex << "gpa 0x" << region.guest_address
                                      << " size 0x" << region.size;
    EXPECT_EQ(fake().call_count(), before)
        << ::testing::PrintToString(fake().calls_since(before));
  }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
};

TEST_F(KvmPartitionTest, MapMemorySendsTheExactRegion) {
  EXPECT_CALL(mock(), SetUserMemoryRegion(
                          kVmFd, AllOf(Field(&kvm_userspace_memory_region::slot, 0u),
                                       Field(&kvm_userspace_memory_region::flags, 0u),
                                       Field(&kvm_userspace_memory_region::guest_phys_addr, 0u),
                                       Field(&kvm_userspace_memory_region::memory_size, 0x200000u),
                                       Field(&kvm_userspace_memory_region::userspace_addr,
                                             0x7f0000000000u))));
  VIRT_EXPECT_OK(part_->MapMemory({0, 0x200000, Host(0x7f0000000000), MemoryFlags::kNone}));
}

TEST_F(KvmPartitionTest, FlagsAndSlotsOfSeveralRegions) {
  auto a = MapOk(0x0, 0x100000, 0x7f0000000000);
  auto b = MapOk(0xfff00000, 0x100000, 0x7f0000200000, MemoryFlags::kReadOnly);
  auto c = MapOk(0x100000000, 0x4000, 0x7f0000400000, MemoryFlags::kDirtyLog);
  auto d = MapOk(0x200000000, 0x1000, 0x7f0000500000,
                 MemoryFlags::kReadOnly | MemoryFlags::kDirtyLog);
  EXPECT_EQ(a.slot, 0u);
  EXPECT_EQ(a.flags, 0u);
  EXPECT_EQ(b.slot, 1u);
  EXPECT_EQ(b.flags, static_cast<uint32_t>(KVM_MEM_READONLY));
  EXPECT_EQ(b.guest_phys_addr, 0xfff00000u);
  EXPECT_EQ(b.memory_size, 0x100000u);
  EXPECT_EQ(b.userspace_addr, 0x7f0000200000u);
  EXPECT_EQ(c.slot, 2u);
  EXPECT_EQ(c.flags, static_cast<uint32_t>(KVM_MEM_LOG_DIRTY_PAGES));
  EXPECT_EQ(c.guest_phys_addr, 0x100000000u);
  EXPECT_EQ(d.slot, 3u);
  EXPECT_EQ(d.flags, static_cast<uint32_t>(KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES));
}

TEST_F(KvmPartitionTest, UnalignedEmptyNullAndWrappingRegionsAreInvalidWithoutAnIoctl) {
  const auto kInvalid = ErrorCode::kInvalidArgument;
  ExpectRefused({0x1000, 0, Host(0x7f0000000000)}, kInvalid);              // empty
  ExpectRefused({0x1001, 0x1000, Host(0x7f0000000000)}, kInvalid);         // gpa
  ExpectRefused({0x1800, 0x1000, Host(0x7f0000000000)}, kInvalid);         // gpa
  ExpectRefused({0x1000, 0x1800, Host(0x7f0000000000)}, kInvalid);         // size
  ExpectRefused({0x1000, 0xfff, Host(0x7f0000000000)}, kInvalid);          // size
  ExpectRefused({0x1000, 0x1000, Host(0x7f0000000010)}, kInvalid);         // host
  ExpectRefused({0x1000, 0x1000, nullptr}, kInvalid);                      // host
  ExpectRefused({0xfffffffffffff000, 0x2000, Host(0x7f0000000000)}, kInvalid);  // wraps
  ExpectRefused({0xfffffffffffff000, 0x1000, Host(0x7f0000000000)}, kInvalid);  // ends at 2^64
  ExpectRefused({0x1000, 0xfffffffffffff000, Host(0x7f0000000000)}, kInvalid);  // wraps
  // Nothing was mapped, so the first valid map still gets slot 0.
  EXPECT_EQ(MapOk(0x1000, 0x1000, 0x7f0000000000).slot, 0u);
}

TEST_F(KvmPartitionTest, OverlapsAreRefusedWithoutAnIoctlAndAdjacentRegionsAreFine) {
  MapOk(0x10000, 0x10000, 0x7f0000000000);  // [0x10000, 0x20000)
  const auto kOverlap = ErrorCode::kOverlap;
  ExpectRefused({0xf000, 0x2000, Host(0x7f0000100000)}, kOverlap);    // straddles the start
  ExpectRefused({0x1f000, 0x2000, Host(0x7f0000100000)}, kOverlap);   // straddles the end
  ExpectRefused({0x0, 0x30000, Host(0x7f0000100000)}, kOverlap);      // contains it
  ExpectRefused({0x12000, 0x1000, Host(0x7f0000100000)}, kOverlap);   // inside it
  ExpectRefused({0x10000, 0x10000, Host(0x7f0000100000)}, kOverlap);  // the same range
  ExpectRefused({0x10000, 0x1000, Host(0x7f0000100000)}, kOverlap);   // same start
  ExpectRefused({0x1f000, 0x1000, Host(0x7f0000100000)}, kOverlap);   // same end

  EXPECT_EQ(MapOk(0x0, 0x10000, 0x7f0000100000).slot, 1u);      // just below
  EXPECT_EQ(MapOk(0x20000, 0x10000, 0x7f0000200000).slot, 2u);  // just above
  // Now [0, 0x30000) is full: anything touching it overlaps, including across two regions.
  ExpectRefused({0xf000, 0x12000, Host(0x7f0000300000)}, kOverlap);
  ExpectRefused({0x2f000, 0x2000, Host(0x7f0000300000)}, kOverlap);
  EXPECT_EQ(MapOk(0x30000, 0x1000, 0x7f0000300000).slot, 3u);
}

TEST_F(KvmPartitionTest, UnmapMustMatchExactlyAndDeletesTheSlot) {
  MapOk(0x0, 0x10000, 0x7f0000000000);                    // slot 0
  auto b = MapOk(0x100000, 0x10000, 0x7f0000100000);      // slot 1
  ASSERT_EQ(b.slot, 1u);
  const size_t before = fake().call_count();
  EXPECT_THAT(part_->UnmapMemory(0x100000, 0x8000), IsErrorCode(ErrorCode::kNotFound));
  EXPECT_THAT(part_->UnmapMemory(0x100000, 0x20000), IsErrorCode(ErrorCode::kNotFound));
  EXPECT_THAT(part_->UnmapMemory(0x101000, 0xf000), IsErrorCode(ErrorCode::kNotFound));
  EXPECT_THAT(part_->UnmapMemory(0x200000, 0x10000), IsErrorCode(ErrorCode::kNotFound));
  EXPECT_EQ(fake().call_count(), before);

  EXPECT_CALL(mock(), SetUserMemoryRegion(
                          kVmFd, AllOf(Field(&kvm_userspace_memory_region::slot, 1u),
                                       Field(&kvm_userspace_memory_region::memory_size, 0u))));
  VIRT_EXPECT_OK(part_->UnmapMemory(0x100000, 0x10000));
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_THAT(part_->UnmapMemory(0x100000, 0x10000), IsErrorCode(ErrorCode::kNotFound));

  // The freed slot is reused, and the range can be mapped again.
  EXPECT_EQ(MapOk(0x100000, 0x4000, 0x7f0000200000).slot, 1u);
  EXPECT_EQ(MapOk(0x300000, 0x4000, 0x7f0000300000).slot, 2u);
}

TEST_F(KvmPartitionTest, SlotsRunOutAtTheKernelsLimit) {
  for (uint32_t i = 0; i < kMaxMemslots; ++i) {
    EXPECT_EQ(MapOk(i * 0x10000ull, 0x1000, 0x7f0000000000 + i * 0x1000ull).slot, i);
  }
  ExpectRefused({0x1000000, 0x1000, Host(0x7f0001000000)}, ErrorCode::kExhausted);
  VIRT_ASSERT_OK(part_->UnmapMemory(5 * 0x10000ull, 0x1000));
  EXPECT_EQ(MapOk(0x1000000, 0x1000, 0x7f0001000000).slot, 5u);
  ExpectRefused({0x2000000, 0x1000, Host(0x7f0002000000)}, ErrorCode::kExhausted);
}

TEST_F(KvmPartitionTest, AFailedMapLeavesTheRegionTableUnchanged) {
  MapOk(0x0, 0x10000, 0x7f0000000000);  // slot 0
  fake().FailCall("KVM_SET_USER_MEMORY_REGION", 0, ENOMEM);
  Status s = part_->MapMemory({0x100000, 0x10000, Host(0x7f0000100000)});
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_SET_USER_MEMORY_REGION");
  EXPECT_EQ(s.error().native_code, ENOMEM);
  // Not recorded: unmapping it is kNotFound, mapping it again works and gets the same slot.
  EXPECT_THAT(part_->UnmapMemory(0x100000, 0x10000), IsErrorCode(ErrorCode::kNotFound));
  EXPECT_EQ(MapOk(0x100000, 0x10000, 0x7f0000100000).slot, 1u);
}

TEST_F(KvmPartitionTest, AFailedUnmapKeepsTheRegionMapped) {
  MapOk(0x0, 0x10000, 0x7f0000000000);
  fake().FailCall("KVM_SET_USER_MEMORY_REGION", 0, EINVAL);
  Status s = part_->UnmapMemory(0x0, 0x10000);
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_SET_USER_MEMORY_REGION");
  ExpectRefused({0x0, 0x1000, Host(0x7f0000200000)}, ErrorCode::kOverlap);
  VIRT_EXPECT_OK(part_->UnmapMemory(0x0, 0x10000));
  EXPECT_EQ(MapOk(0x0, 0x1000, 0x7f0000200000).slot, 0u);
}

TEST_F(KvmPartitionTest, RequestMsiSendsTheMessageAndReportsDelivery) {
  const MsiMessage msi{0x100'FEE01008ull, 0x4041};  // address_hi 0x100: extended destination
  EXPECT_CALL(mock(), SignalMsi(kVmFd, AllOf(Field(&kvm_msi::address_lo, 0xFEE01008u),
                                             Field(&kvm_msi::address_hi, 0x100u),
                                             Field(&kvm_msi::data, 0x4041u),
                                             Field(&kvm_msi::flags, 0u))))
      .Times(2);
  auto delivered = part_->RequestMsi(msi);
  ASSERT_TRUE(delivered.has_value()) << delivered.error().Message();
  EXPECT_TRUE(*delivered);

  fake().SetSignalMsiResult(0);  // the guest blocked it
  auto blocked = part_->RequestMsi(msi);
  ASSERT_TRUE(blocked.has_value());
  EXPECT_FALSE(*blocked);
}

TEST_F(KvmPartitionTest, RequestMsiRejectsBadMessagesWithoutAnIoctl) {
  EXPECT_CALL(mock(), SignalMsi(_, _)).Times(0);
  for (MsiMessage bad : {MsiMessage{0xFED00000, 0x30}, MsiMessage{0xFEF00000, 0x30},
                         MsiMessage{0, 0x30},
                         MsiMessage{0x0000'0080'FEE00000ull, 0x30},  // address_hi low byte
                         MsiMessage{0xFEE00000, 0x330}}) {          // reserved delivery mode
    auto r = part_->RequestMsi(bad);
    EXPECT_THAT(r, IsErrorCode(ErrorCode::kInvalidArgument)) << std::hex << bad.address;
  }
}

TEST_F(KvmPartitionTest, RequestMsiPassesTheIoctlErrorOn) {
  fake().FailCall("KVM_SIGNAL_MSI", 0, EINVAL);
  auto r = part_->RequestMsi(Msi(0, 0x30));
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "KVM_SIGNAL_MSI");
  EXPECT_EQ(r.error().native_code, EINVAL);
}

TEST_F(KvmPartitionTest, VcpuIndicesAreCheckedAndUsedOnce) {
  const size_t before = fake().call_count();
  auto out_of_range = part_->CreateVcpu(2);
  EXPECT_THAT(out_of_range, IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(fake().call_count(), before);

  auto v1 = part_->CreateVcpu(1);
  ASSERT_TRUE(v1.has_value()) << v1.error().Message();
  EXPECT_EQ((*v1)->index(), 1u);
  const size_t after_first = fake().call_count();
  auto again = part_->CreateVcpu(1);
  EXPECT_THAT(again, IsErrorCode(ErrorCode::kFailedPrecondition));
  EXPECT_EQ(fake().call_count(), after_first);
  // Even once the first one is gone: KVM never hands out a vCPU id twice.
  v1->reset();
  EXPECT_THAT(part_->CreateVcpu(1), IsErrorCode(ErrorCode::kFailedPrecondition));
  auto v0 = part_->CreateVcpu(0);
  EXPECT_TRUE(v0.has_value());
}

TEST_F(KvmPartitionTest, AFailedVcpuCreationCanBeRetried) {
  fake().FailCall("KVM_CREATE_VCPU", 0, EEXIST);
  auto failed = part_->CreateVcpu(0);
  ASSERT_FALSE(failed.has_value());
  EXPECT_STREQ(failed.error().operation, "KVM_CREATE_VCPU");
  auto vcpu = part_->CreateVcpu(0);
  EXPECT_TRUE(vcpu.has_value());
}

TEST_F(KvmPartitionTest, DestroyingThePartitionClosesTheVmFdOnce) {
  EXPECT_CALL(mock(), Close(kVmFd)).Times(1);
  EXPECT_CALL(mock(), SetUserMemoryRegion(_, _)).Times(1);  // the map only: no per-slot deletes
  MapOk(0x0, 0x1000, 0x7f0000000000);
  part_.reset();
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_EQ(fake().close_count(kVmFd), 1);
}

TEST_F(KvmPartitionTest, AVcpuMayOutliveItsPartition) {
  auto vcpu = part_->CreateVcpu(0);
  ASSERT_TRUE(vcpu.has_value());
  part_.reset();
  EXPECT_EQ(fake().close_count(kVmFd), 1);
  EXPECT_EQ(fake().close_count(kVcpuFdBase), 0);
  auto exit = (*vcpu)->Run();  // the fake's default exit is HLT
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*exit));
  vcpu->reset();
  EXPECT_EQ(fake().close_count(kVcpuFdBase), 1);
  EXPECT_EQ(fake().mapped_runs(), 0u);
}

}  // namespace
}  // namespace virt::kvm::test
