// The fake's MSHV_IOEVENTFD against upstream mshv_eventfd.c's rules, so the backend suites
// test against the kernel's answers: lengths, wrap, reserved fields, PIO, eventfd checks, the
// collision rule, deassign lookup and release on close.
#include <dirent.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

class FakeIoeventfdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fake_.Open("/dev/mshv").has_value());
    auto p = fake_.CreatePartition(kMshvFd, {});
    ASSERT_TRUE(p.has_value());
    pfd_ = *p;
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ASSERT_GE(efd_, 0);
  }
  void TearDown() override {
    if (pfd_ >= 0) (void)fake_.Close(pfd_);
    (void)fake_.Close(kMshvFd);
    ::close(efd_);
  }
  mshv_user_ioeventfd Args(uint64_t addr, uint32_t len, uint32_t flags = 0, uint64_t data = 0,
                           int fd = -2) {
    mshv_user_ioeventfd a{};
    a.addr = addr;
    a.len = len;
    a.flags = flags;
    a.datamatch = data;
    a.fd = fd == -2 ? efd_ : fd;
    return a;
  }
  int Errno(const mshv_user_ioeventfd& a) {
    Status s = fake_.Ioeventfd(pfd_, a);
    return s ? 0 : static_cast<int>(s.error().native_code);
  }
  size_t Registered() { return fake_.partitions().at(pfd_).ioeventfds.size(); }

  FakeMshv fake_;
  int pfd_ = -1;
  int efd_ = -1;
};

TEST_F(FakeIoeventfdTest, TakesNaturalLengthsAndLengthZeroAndRefusesTheRest) {
  for (uint32_t len : {0u, 1u, 2u, 4u, 8u}) EXPECT_EQ(Errno(Args(0x1000 + 16 * len, len)), 0);
  for (uint32_t len : {3u, 16u}) EXPECT_EQ(Errno(Args(0x2000, len)), EINVAL) << len;
  EXPECT_EQ(Errno(Args(~0ull - 1, 4)), EINVAL) << "wraps";
  EXPECT_EQ(Registered(), 5u);
  EXPECT_THAT(fake_.violations(), IsEmpty());
}

TEST_F(FakeIoeventfdTest, ReservedFlagsOrBytesAreEinvalAndAViolation) {
  EXPECT_EQ(Errno(Args(0x1000, 4, 8)), EINVAL);
  auto a = Args(0x1000, 4);
  a.rsvd[3] = 1;
  EXPECT_EQ(Errno(a), EINVAL);
  EXPECT_THAT(fake_.violations(), SizeIs(2));
  EXPECT_EQ(Registered(), 0u);
}

TEST_F(FakeIoeventfdTest, PortIoIsNotImplementedForAssignOrDeassign) {
  EXPECT_EQ(Errno(Args(0x60, 1, kPio)), EOPNOTSUPP);
  EXPECT_EQ(Errno(Args(0x60, 1, kPio | kDeassign)), EOPNOTSUPP);
  EXPECT_EQ(Registered(), 0u);
}

TEST_F(FakeIoeventfdTest, TheFdMustBeAnOpenEventfd) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_EQ(Errno(Args(0x1000, 4, 0, 0, pipe_fds[0])), EINVAL);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_EQ(Errno(Args(0x1000, 4, 0, 0, pipe_fds[0])), EBADF);
  EXPECT_EQ(Registered(), 0u);
}

TEST_F(FakeIoeventfdTest, CollisionsNeedTheSameAddressAndLength) {
  ASSERT_EQ(Errno(Args(0x1000, 2, kDatamatch, 1)), 0);
  EXPECT_EQ(Errno(Args(0x1000, 2, kDatamatch, 2)), 0) << "another value";
  EXPECT_EQ(Errno(Args(0x1000, 2, kDatamatch, 1)), EEXIST) << "the same value";
  EXPECT_EQ(Errno(Args(0x1000, 2)), EEXIST) << "a wildcard over data matches";
  EXPECT_EQ(Errno(Args(0x1000, 4)), 0) << "another length";
  EXPECT_EQ(Errno(Args(0x1000, 0)), 0) << "length 0 is just another length to this rule";
  EXPECT_EQ(Errno(Args(0x1000, 0, kDatamatch, 7)), EEXIST);
  EXPECT_EQ(Registered(), 4u);
}

TEST_F(FakeIoeventfdTest, DeassignFindsTheSameEventfdAddressLengthAndDatamatch) {
  ASSERT_EQ(Errno(Args(0x1000, 4, kDatamatch, 5)), 0);
  EXPECT_EQ(Errno(Args(0x1000, 4, kDatamatch | kDeassign, 6)), ENOENT);
  EXPECT_EQ(Errno(Args(0x1000, 4, kDeassign)), ENOENT) << "wildcard-ness differs";
  EXPECT_EQ(Errno(Args(0x1000, 2, kDatamatch | kDeassign, 5)), ENOENT);
  const int other = ::eventfd(0, EFD_CLOEXEC);
  EXPECT_EQ(Errno(Args(0x1000, 4, kDatamatch | kDeassign, 5, other)), ENOENT);
  ::close(other);
  EXPECT_THAT(fake_.violations(), SizeIs(4));  // the backend must never miss
  fake_.violations().clear();
  // The eventfd, not the fd number: a dup of it deassigns.
  const int dup = ::dup(efd_);
  EXPECT_EQ(Errno(Args(0x1000, 4, kDatamatch | kDeassign, 5, dup)), 0);
  ::close(dup);
  EXPECT_EQ(Registered(), 0u);
}

TEST_F(FakeIoeventfdTest, ARegistrationHoldsItsEventfdUntilDeassignOrClose) {
  const int fds = OpenFdCount();
  ASSERT_EQ(Errno(Args(0x1000, 4)), 0);
  const int own = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_EQ(Errno(Args(0x2000, 8, 0, 0, own)), 0);
  EXPECT_EQ(OpenFdCount(), fds + 3);  // `own` and one reference per registration
  ASSERT_EQ(Errno(Args(0x1000, 4, kDeassign)), 0);
  EXPECT_EQ(OpenFdCount(), fds + 2);
  // The VMM closes its eventfd: the kernel's reference keeps it, and a store still rings it.
  ::close(own);
  const int held = fake_.partitions().at(pfd_).ioeventfds[0].held_fd;
  EXPECT_TRUE(fake_.GuestMmioWrite(pfd_, {0x2000, 8, 1}));
  uint64_t count = 0;
  EXPECT_EQ(::read(held, &count, sizeof count), static_cast<ssize_t>(sizeof count));
  EXPECT_EQ(count, 1u);
  ASSERT_TRUE(fake_.Close(pfd_).has_value());
  pfd_ = -1;
  EXPECT_EQ(OpenFdCount(), fds) << "closing the partition fd releases every ioeventfd";
}

}  // namespace
}  // namespace virt::mshv::test
