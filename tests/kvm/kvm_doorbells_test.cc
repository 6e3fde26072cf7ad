// KVM doorbells against a mocked KvmIoctl: exact KVM_IOEVENTFD payloads (flags, len, datamatch),
// deassign with the same fields, collisions refused before the kernel, lifetime.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class KvmDoorbellsTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 1, .irqchip = true});
    ASSERT_NE(part_, nullptr);
    doorbells_ = part_->doorbells();
    ASSERT_NE(doorbells_, nullptr);
  }
  void TearDown() override {
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  Doorbells* doorbells_ = nullptr;
};

TEST_F(KvmDoorbellsTest, EachMatchBecomesTheExactIoeventfd) {
  struct Case {
    DoorbellMatch match;
    uint32_t len, flags;
    uint64_t datamatch;
  };
  const Case cases[] = {
      {{DoorbellSpace::kMmio, 0xfeb00000, 4, {}}, 4, 0, 0},
      {{DoorbellSpace::kMmio, 0xfeb01000, 2, 0x0007}, 2, KVM_IOEVENTFD_FLAG_DATAMATCH, 7},
      {{DoorbellSpace::kMmio, 0xfeb02000, 8, ~0ull}, 8, KVM_IOEVENTFD_FLAG_DATAMATCH, ~0ull},
      {{DoorbellSpace::kMmio, 0xfeb03001, kDoorbellAnyLength, {}}, 0, 0, 0},
      {{DoorbellSpace::kPio, 0xc050, 2, {}}, 2, KVM_IOEVENTFD_FLAG_PIO, 0},
      {{DoorbellSpace::kPio, 0xc060, 1, 0x3}, 1,
       KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH, 3},
      {{DoorbellSpace::kPio, 0xc070, kDoorbellAnyLength, {}}, 0, KVM_IOEVENTFD_FLAG_PIO, 0},
  };
  EXPECT_TRUE(doorbells_->supports_any_length());
  for (const Case& c : cases) {
    SCOPED_TRACE(Describe(c.match));
    auto r = doorbells_->Register(c.match);
    ASSERT_TRUE(r.has_value()) << r.error().Message();
    const int fd = (*r)->event().native_handle();
    const kvm_ioeventfd a = fake().ioeventfd_calls().back();
    EXPECT_EQ(a.addr, c.match.address);
    EXPECT_EQ(a.len, c.len);
    EXPECT_EQ(a.fd, fd);
    EXPECT_EQ(a.flags, c.flags);
    EXPECT_EQ(a.datamatch, c.datamatch);
    for (uint8_t pad : a.pad) EXPECT_EQ(pad, 0);
    ASSERT_TRUE((*r)->Release());
    const kvm_ioeventfd d = fake().ioeventfd_calls().back();
    EXPECT_EQ(d.addr, a.addr);
    EXPECT_EQ(d.len, a.len);
    EXPECT_EQ(d.fd, a.fd);
    EXPECT_EQ(d.datamatch, a.datamatch);
    EXPECT_EQ(d.flags, c.flags | KVM_IOEVENTFD_FLAG_DEASSIGN);
  }
  EXPECT_THAT(fake().ioeventfds(), IsEmpty());
}

TEST_F(KvmDoorbellsTest, VirtioStyleQueuesShareAnAddressByDataMatch) {
  std::vector<std::unique_ptr<DoorbellRegistration>> queues;
  for (uint64_t q = 0; q < 4; ++q) {
    auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe003000, 2, q});
    ASSERT_TRUE(r.has_value()) << r.error().Message();
    queues.push_back(std::move(*r));
  }
  EXPECT_EQ(fake().ioeventfds().size(), 4u);
  const size_t calls = fake().ioeventfd_calls().size();
  auto wildcard = doorbells_->Register({DoorbellSpace::kMmio, 0xfe003000, 2, {}});
  EXPECT_THAT(wildcard, IsErrorCode(ErrorCode::kOverlap));
  auto same = doorbells_->Register({DoorbellSpace::kMmio, 0xfe003000, 2, 1});
  EXPECT_THAT(same, IsErrorCode(ErrorCode::kOverlap));
  EXPECT_EQ(fake().ioeventfd_calls().size(), calls) << "collisions never reach the kernel";
  queues.clear();
  EXPECT_THAT(fake().ioeventfds(), IsEmpty());
}

TEST_F(KvmDoorbellsTest, AKernelRefusalLeavesNothingOpen) {
  const int fds = CountOpenFds();
  fake().FailCall("KVM_IOEVENTFD", 0, ENOSPC);
  auto r = doorbells_->Register({DoorbellSpace::kPio, 0x60, 1, {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "KVM_IOEVENTFD");
  EXPECT_EQ(r.error().native_code, ENOSPC);
  EXPECT_EQ(CountOpenFds(), fds);
  EXPECT_TRUE(doorbells_->Register({DoorbellSpace::kPio, 0x60, 1, {}}).has_value());
}

TEST_F(KvmDoorbellsTest, WithoutAnyLengthSupportAnyLengthIsRefused) {
  part_.reset();
  hv_.reset();
  fake().SetCapability(KVM_CAP_IOEVENTFD_ANY_LENGTH, 0);
  hv_ = NewHypervisor();
  part_ = NewPartition(*hv_);
  Doorbells* d = part_->doorbells();
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(d->supports_any_length());
  auto r = d->Register({DoorbellSpace::kMmio, 0x1000, kDoorbellAnyLength, {}});
  EXPECT_THAT(r, IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(fake().ioeventfd_calls(), IsEmpty());
}

TEST_F(KvmDoorbellsTest, WithoutIoeventfdThereAreNoDoorbells) {
  part_.reset();
  hv_.reset();
  fake().SetCapability(KVM_CAP_IOEVENTFD, 0);
  hv_ = NewHypervisor();
  part_ = NewPartition(*hv_);
  EXPECT_EQ(part_->doorbells(), nullptr);
}

TEST_F(KvmDoorbellsTest, RegistrationsOutlivingThePartitionFailWithPartitionGone) {
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0x2000, 4, {}});
  ASSERT_TRUE(r.has_value());
  const size_t calls = fake().ioeventfd_calls().size();
  part_.reset();
  EXPECT_THAT((*r)->Release(), IsErrorCode(ErrorCode::kPartitionGone));
  r->reset();
  EXPECT_EQ(fake().ioeventfd_calls().size(), calls);
}

TEST_F(KvmDoorbellsTest, DeviceThreadsRegisterAndDropConcurrently) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t, &failures] {
      for (int i = 0; i < 100; ++i) {
        auto r = doorbells_->Register(
            {DoorbellSpace::kMmio, 0x10000 + 0x100 * static_cast<uint64_t>(t), 4,
             static_cast<uint64_t>(i % 3)});
        if (!r || !(*r)->Release()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(fake().ioeventfds(), IsEmpty());
  EXPECT_EQ(fake().ioeventfd_calls().size(), 800u);
}

}  // namespace
}  // namespace virt::kvm::test
