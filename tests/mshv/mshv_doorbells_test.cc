// MSHV doorbells against the mocked / faked MshvIoctl: exact MSHV_IOEVENTFD bytes (flags, len,
// datamatch, fd, rsvd), deassign with the same fields, refusals before the kernel, kernel
// refusals, lifetime after the partition.
#include <dirent.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "mshv_test_fixture.h"
#include "virt/kernel_doorbells.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::InSequence;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::Truly;

using Bytes = std::array<uint8_t, 32>;

Bytes BytesOf(const mshv_user_ioeventfd& a) {
  Bytes b;
  std::memcpy(b.data(), &a, sizeof a);
  return b;
}

// The argument as the reference lays it out: datamatch (0), addr (8), len (16), fd (20),
// flags (24), rsvd (28..31) zero.
Bytes Want(uint64_t datamatch, uint64_t addr, uint32_t len, int fd, uint32_t flags) {
  Bytes b{};
  PutLe(b.data(), 0, datamatch, 8);
  PutLe(b.data(), 8, addr, 8);
  PutLe(b.data(), 16, len, 4);
  PutLe(b.data(), 20, static_cast<uint32_t>(fd), 4);
  PutLe(b.data(), 24, flags, 4);
  return b;
}

class MshvDoorbellsTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{2, true});
    doorbells_ = partition_->doorbells();
    ASSERT_NE(doorbells_, nullptr);
    doorbells_->SetErrorHandler([this](const Error& e) { reported_.push_back(e); });
  }
  std::unique_ptr<DoorbellRegistration> Bell(const DoorbellMatch& m) {
    auto r = doorbells_->Register(m);
    EXPECT_TRUE(r.has_value()) << Describe(m) << ": " << r.error().Message();
    return r ? std::move(*r) : nullptr;
  }
  std::vector<FakeMshv::Partition::Ioeventfd>& Kernel() {
    return fake_.only_partition().ioeventfds;
  }
  size_t CoreSize() { return static_cast<KernelDoorbells*>(doorbells_)->size(); }

  Doorbells* doorbells_ = nullptr;
  std::vector<Error> reported_;
};

TEST_F(MshvDoorbellsTest, EveryPartitionHasDoorbellsThatMatchAnyLength) {
  EXPECT_TRUE(doorbells_->supports_any_length());
  auto plain = NewPartition(*hypervisor_, PartitionConfig{1, false});
  ASSERT_NE(plain->doorbells(), nullptr) << "doorbells need no LAPIC";
  EXPECT_TRUE(plain->doorbells()->supports_any_length());
}

TEST_F(MshvDoorbellsTest, EachMatchBecomesTheExactIoeventfdAndDeassignSendsTheSameFields) {
  struct Case {
    DoorbellMatch match;
    uint64_t datamatch;
    uint32_t len, flags;
  };
  const Case cases[] = {
      {{DoorbellSpace::kMmio, 0xfeb00000, 4, {}}, 0, 4, 0},
      {{DoorbellSpace::kMmio, 0xfeb01000, 2, 0x0007}, 7, 2, kDatamatch},
      {{DoorbellSpace::kMmio, 0xfeb02000, 8, ~0ull}, ~0ull, 8, kDatamatch},
      {{DoorbellSpace::kMmio, 0xfeb03000, 1, 0}, 0, 1, kDatamatch},
      {{DoorbellSpace::kMmio, 0x1'0000'0003, kDoorbellAnyLength, {}}, 0, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Describe(c.match));
    auto r = Bell(c.match);
    ASSERT_NE(r, nullptr);
    const int fd = r->event().native_handle();
    const Bytes assign = Want(c.datamatch, c.match.address, c.len, fd, c.flags);
    EXPECT_EQ(BytesOf(fake_.ioeventfd_calls().back()), assign);
    ASSERT_THAT(Kernel(), SizeIs(1));
    ASSERT_TRUE(r->Release());
    EXPECT_EQ(BytesOf(fake_.ioeventfd_calls().back()),
              Want(c.datamatch, c.match.address, c.len, fd, c.flags | kDeassign));
    EXPECT_THAT(Kernel(), IsEmpty());
  }
  EXPECT_THAT(fake_.ioeventfd_calls(), SizeIs(2 * std::size(cases)));
  EXPECT_THAT(reported_, IsEmpty());
}

TEST_F(MshvDoorbellsTest, AssignAndDeassignGoToThePartitionFd) {
  const int pfd = partition_fd();
  const DoorbellMatch m{DoorbellSpace::kMmio, 0xfe000000, 4, 0x10};
  int fd = -1;
  {
    InSequence seq;
    EXPECT_CALL(*mock_, Ioeventfd(pfd, Truly([&](const mshv_user_ioeventfd& a) {
                                   fd = a.fd;
                                   return BytesOf(a) == Want(0x10, 0xfe000000, 4, a.fd, kDatamatch);
                                 })));
    EXPECT_CALL(*mock_, Ioeventfd(pfd, Truly([&](const mshv_user_ioeventfd& a) {
                                   return BytesOf(a) ==
                                          Want(0x10, 0xfe000000, 4, fd, kDatamatch | kDeassign);
                                 })));
  }
  auto r = Bell(m);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(fd, r->event().native_handle());
  r.reset();
  Verified();
  EXPECT_THAT(reported_, IsEmpty());
}

TEST_F(MshvDoorbellsTest, GuestStoresRingOnlyTheDoorbellTheyMatch) {
  std::vector<std::unique_ptr<DoorbellRegistration>> queues;
  for (uint64_t q = 0; q < 4; ++q) queues.push_back(Bell({DoorbellSpace::kMmio, 0xfe003000, 2, q}));
  auto any = Bell({DoorbellSpace::kMmio, 0xfe004000, kDoorbellAnyLength, {}});
  ASSERT_NE(any, nullptr);
  const int pfd = partition_fd();
  EXPECT_TRUE(fake_.GuestMmioWrite(pfd, {0xfe003000, 2, 2}));
  EXPECT_FALSE(fake_.GuestMmioWrite(pfd, {0xfe003000, 2, 9})) << "no queue 9";
  EXPECT_FALSE(fake_.GuestMmioWrite(pfd, {0xfe003000, 4, 2})) << "wrong width";
  EXPECT_FALSE(fake_.GuestMmioWrite(pfd, {0xfe003002, 2, 2})) << "wrong address";
  for (size_t q = 0; q < queues.size(); ++q) {
    EXPECT_EQ(*queues[q]->event().TryWait(), q == 2 ? 1u : 0u) << "queue " << q;
  }
  for (uint32_t len : {1u, 2u, 4u, 8u}) {
    EXPECT_TRUE(fake_.GuestMmioWrite(pfd, {0xfe004000, len, 5})) << len;
  }
  EXPECT_EQ(*any->event().TryWait(), 4u);
}

TEST_F(MshvDoorbellsTest, PortIoIsUnavailableAndLeavesNothingBehind) {
  const int fds = OpenFdCount();
  const DoorbellMatch port{DoorbellSpace::kPio, 0xc050, 2, {}};
  auto r = doorbells_->Register(port);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_STREQ(r.error().operation, "MSHV_IOEVENTFD");
  EXPECT_EQ(r.error().native_code, EOPNOTSUPP);
  const mshv_user_ioeventfd& sent = fake_.ioeventfd_calls().back();
  EXPECT_EQ(BytesOf(sent), Want(0, 0xc050, 2, sent.fd, kPio));
  EXPECT_EQ(OpenFdCount(), fds);
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_EQ(CoreSize(), 0u);
  // Nothing was kept: the same port is refused by the kernel again, not as an overlap.
  EXPECT_EQ(doorbells_->Register(port).error().code, ErrorCode::kUnavailable);
}

TEST_F(MshvDoorbellsTest, CollisionsAndBadMatchesNeverReachTheKernel) {
  std::vector<std::unique_ptr<DoorbellRegistration>> queues;
  for (uint64_t q = 0; q < 4; ++q) queues.push_back(Bell({DoorbellSpace::kMmio, 0xfe003000, 2, q}));
  const auto kernel_before = fake_.only_partition().ioeventfds.size();
  const int fds = OpenFdCount();
  EXPECT_CALL(*mock_, Ioeventfd(_, _)).Times(0);
  struct Refusal {
    DoorbellMatch match;
    ErrorCode code;
  };
  const Refusal refusals[] = {
      {{DoorbellSpace::kMmio, 0xfe003000, 2, {}}, ErrorCode::kOverlap},  // wildcard over queues
      {{DoorbellSpace::kMmio, 0xfe003000, 2, 1}, ErrorCode::kOverlap},   // the same queue
      // MSHV itself would take this one (its collision rule needs equal lengths); the shared
      // rule is KVM's, so a VMM gets the same answer on every backend.
      {{DoorbellSpace::kMmio, 0xfe003000, kDoorbellAnyLength, {}}, ErrorCode::kOverlap},
      {{DoorbellSpace::kMmio, 0xfe005002, 4, {}}, ErrorCode::kInvalidArgument},  // unaligned
      {{DoorbellSpace::kMmio, 0xfe005000, 0, {}}, ErrorCode::kInvalidArgument},  // zero length
      {{DoorbellSpace::kMmio, 0xfe005000, 3, {}}, ErrorCode::kInvalidArgument},
      {{DoorbellSpace::kMmio, 0xfe005000, kDoorbellAnyLength, 1}, ErrorCode::kInvalidArgument},
      {{DoorbellSpace::kMmio, 0xfe005000, 1, 0x100}, ErrorCode::kInvalidArgument},  // data > len
      {{DoorbellSpace::kMmio, ~0ull - 3, 8, {}}, ErrorCode::kInvalidArgument},  // wraps
      {{DoorbellSpace::kPio, 0xc000, 8, {}}, ErrorCode::kInvalidArgument},
      {{DoorbellSpace::kPio, 0xffff, 2, {}}, ErrorCode::kInvalidArgument},  // past port 0xffff
  };
  for (const Refusal& r : refusals) {
    SCOPED_TRACE(Describe(r.match));
    auto got = doorbells_->Register(r.match);
    ASSERT_FALSE(got.has_value());
    EXPECT_EQ(got.error().code, r.code) << got.error().Message();
  }
  Verified();
  EXPECT_EQ(fake_.only_partition().ioeventfds.size(), kernel_before);
  EXPECT_EQ(CoreSize(), 4u);
  EXPECT_EQ(OpenFdCount(), fds) << "a refused registration left its event open";
  // A refusal changed nothing: a width that does not collide still registers.
  EXPECT_NE(Bell({DoorbellSpace::kMmio, 0xfe003000, 4, {}}), nullptr);
}

TEST_F(MshvDoorbellsTest, AKernelRefusalLeavesNothingOpen) {
  const int fds = OpenFdCount();
  fake_.FailNext("Ioeventfd", 0, ENOSPC);
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe000000, 4, {}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNative);
  EXPECT_STREQ(r.error().operation, "MSHV_IOEVENTFD");
  EXPECT_EQ(r.error().native_code, ENOSPC);
  EXPECT_EQ(OpenFdCount(), fds);
  EXPECT_EQ(CoreSize(), 0u);
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_NE(Bell({DoorbellSpace::kMmio, 0xfe000000, 4, {}}), nullptr);
}

TEST_F(MshvDoorbellsTest, AFailedDeassignIsReturnedOnceAndTheKernelKeepsItUntilClose) {
  const int fds = OpenFdCount();
  const DoorbellMatch m{DoorbellSpace::kMmio, 0xfe000000, 4, {}};
  auto r = Bell(m);
  ASSERT_NE(r, nullptr);
  fake_.FailNext("Ioeventfd", 0, EIO);
  Status s = r->Release();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "MSHV_IOEVENTFD");
  EXPECT_EQ(s.error().native_code, EIO);
  EXPECT_EQ(r->Release().error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(CoreSize(), 0u);
  r.reset();
  EXPECT_THAT(reported_, IsEmpty()) << "Release returned the error; the destructor adds none";
  // The kernel still holds it (and its eventfd): the same match again is the kernel's EEXIST.
  ASSERT_THAT(Kernel(), SizeIs(1));
  auto again = doorbells_->Register(m);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().native_code, EEXIST);
  EXPECT_STREQ(again.error().operation, "MSHV_IOEVENTFD");
  EXPECT_EQ(CoreSize(), 0u);
  // Closing the partition fd releases it, and its eventfd with it.
  partition_.reset();
  EXPECT_EQ(OpenFdCount(), fds);
}

TEST_F(MshvDoorbellsTest, ADroppedRegistrationReportsAFailedDeassignToTheHandler) {
  auto r = Bell({DoorbellSpace::kMmio, 0xfe000000, 4, 3});
  ASSERT_NE(r, nullptr);
  fake_.FailNext("Ioeventfd", 0, EIO);
  r.reset();
  ASSERT_THAT(reported_, SizeIs(1));
  EXPECT_STREQ(reported_[0].operation, "MSHV_IOEVENTFD");
  EXPECT_EQ(reported_[0].native_code, EIO);
  EXPECT_EQ(fake_.ioeventfd_calls().back().flags, kDatamatch | kDeassign);
}

TEST_F(MshvDoorbellsTest, RegistrationsOutlivingThePartitionFailWithPartitionGone) {
  const int fds = OpenFdCount();
  auto r = Bell({DoorbellSpace::kMmio, 0xfe000000, 4, {}});
  ASSERT_NE(r, nullptr);
  const size_t calls = fake_.ioeventfd_calls().size();
  partition_.reset();
  EXPECT_TRUE(fake_.partitions().empty()) << "the partition fd was closed";
  EXPECT_EQ(r->Release().error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(r->Release().error().code, ErrorCode::kAlreadyReleased);
  r.reset();
  EXPECT_EQ(fake_.ioeventfd_calls().size(), calls) << "no MSHV_IOEVENTFD after the partition";
  EXPECT_THAT(reported_, IsEmpty());
  EXPECT_EQ(OpenFdCount(), fds);
}

TEST_F(MshvDoorbellsTest, DroppingAllRegistrationsFirstDeassignsEachOnce) {
  std::vector<std::unique_ptr<DoorbellRegistration>> bells;
  for (uint64_t i = 0; i < 8; ++i) {
    bells.push_back(Bell({DoorbellSpace::kMmio, 0xfe000000 + 8 * i, 8, {}}));
  }
  ASSERT_THAT(Kernel(), SizeIs(8));
  bells.clear();
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_THAT(fake_.ioeventfd_calls(), SizeIs(16));
  EXPECT_EQ(CoreSize(), 0u);
}

}  // namespace
}  // namespace virt::mshv::test
