// MshvIrqFd: routing-table bytes, arm-after-push / deassign-before-remove ordering, batching,
// rollback, resample, GSI exhaustion, teardown and thread safety.
#include <thread>

#include "mshv_test_fixture.h"
#include "virt/mshv/mshv_irqfd_route.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::InSequence;
using ::testing::IsEmpty;
using ::testing::Truly;

class MshvIrqFdTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_);
    irqfd_ = partition_->irqfd();
    ASSERT_NE(irqfd_, nullptr);
  }
  std::unique_ptr<IrqFdRoute> Route() {
    auto r = irqfd_->NewRoute();
    EXPECT_TRUE(r.has_value()) << r.error().Message();
    return r ? std::move(*r) : nullptr;
  }
  std::map<uint32_t, mshv_user_irq_entry>& Kernel() { return fake_.only_partition().table; }
  std::map<uint32_t, mshv_user_irqfd>& Irqfds() { return fake_.only_partition().irqfds; }

  IrqFd* irqfd_ = nullptr;
};

auto IrqfdIs(int fd, int resamplefd, uint32_t gsi, uint32_t flags) {
  return AllOf(Field(&mshv_user_irqfd::fd, fd), Field(&mshv_user_irqfd::resamplefd, resamplefd),
               Field(&mshv_user_irqfd::gsi, gsi), Field(&mshv_user_irqfd::flags, flags));
}

// The table argument holds exactly these {gsi, address_lo, address_hi, data} entries.
auto TableIs(std::vector<std::array<uint32_t, 4>> want) {
  return Truly([want](const mshv_user_irq_table& t) {
    if (t.rsvd != 0 || t.nr != want.size()) return false;
    auto got = TableEntries(t);
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i].gsi != want[i][0] || got[i].address_lo != want[i][1] ||
          got[i].address_hi != want[i][2] || got[i].data != want[i][3]) {
        return false;
      }
    }
    return true;
  });
}

TEST_F(MshvIrqFdTest, NewRouteTakesTheFirstGsiAfterTheIoapicPinsAndIsMasked) {
  EXPECT_CALL(*mock_, SetMsiRouting(_, _)).Times(0);
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  auto r = Route();
  EXPECT_EQ(r->gsi(), kFirstMsiGsi);
  EXPECT_EQ(r->msi(), std::nullopt);
  EXPECT_TRUE(r->event().valid());
  auto* mshv_route = dynamic_cast<MshvIrqFdRoute*>(r.get());
  ASSERT_NE(mshv_route, nullptr);
  EXPECT_EQ(mshv_route->resample_event(), nullptr);
}

TEST_F(MshvIrqFdTest, SetMsiPushesTheEntryThenAssigns) {
  auto r = Route();
  const MsiMessage msi{0xFEE01000, 0x4041};
  InSequence seq;
  EXPECT_CALL(*mock_, SetMsiRouting(partition_fd(), TableIs({{24, 0xFEE01000, 0, 0x4041}})));
  EXPECT_CALL(*mock_, Irqfd(partition_fd(), IrqfdIs(r->event().native_handle(), -1, 24, 0)));
  ASSERT_TRUE(r->SetMsi(msi));
  EXPECT_EQ(r->msi(), msi);
  EXPECT_EQ(irqfd_->push_count(), 1u);
  Verified();
}

TEST_F(MshvIrqFdTest, AddressHiGoesInAsIs) {
  auto r = Route();
  const MsiMessage msi{0x0000010000000000ull | 0xFEE00000ull, 0x30};  // extended destination
  EXPECT_CALL(*mock_, SetMsiRouting(_, TableIs({{24, 0xFEE00000, 0x100, 0x30}})));
  ASSERT_TRUE(r->SetMsi(msi));
  Verified();
}

TEST_F(MshvIrqFdTest, RetargetPushesWithoutTouchingTheIrqfd) {
  auto r = Route();
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  EXPECT_CALL(*mock_, SetMsiRouting(_, TableIs({{24, 0xFEE01000, 0, 0x41}})));
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(1, 0x41)));
  // Setting the same MSI again is free.
  EXPECT_CALL(*mock_, SetMsiRouting(_, _)).Times(0);
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(1, 0x41)));
  Verified();
}

TEST_F(MshvIrqFdTest, ClearMsiDeassignsBeforeThePushWithoutTheEntry) {
  auto r = Route();
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  InSequence seq;
  EXPECT_CALL(*mock_, Irqfd(_, IrqfdIs(r->event().native_handle(), -1, 24, 1)));
  EXPECT_CALL(*mock_, SetMsiRouting(_, TableIs({})));
  ASSERT_TRUE(r->ClearMsi());
  EXPECT_EQ(r->msi(), std::nullopt);
}

TEST_F(MshvIrqFdTest, DestructionTearsDownInOrderAndFreesTheGsi) {
  auto r = Route();
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  r.reset();
  EXPECT_THAT(fake_.log(), ElementsAre("push 24", "assign 24", "deassign 24", "push"));
  EXPECT_THAT(Irqfds(), IsEmpty());
  EXPECT_EQ(Route()->gsi(), 24u);  // reused
}

TEST_F(MshvIrqFdTest, MaskedRouteDropCostsNoIoctl) {
  auto r = Route();
  EXPECT_CALL(*mock_, SetMsiRouting(_, _)).Times(0);
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  r.reset();
}

TEST_F(MshvIrqFdTest, BatchOfRoutesCostsOnePush) {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < 8; ++i) routes.push_back(Route());
  {
    RouteBatch batch(*irqfd_);
    for (int i = 0; i < 8; ++i) {
      ASSERT_TRUE(routes[i]->SetMsi(MsiMessage::Fixed(0, static_cast<uint8_t>(0x40 + i))));
    }
    EXPECT_EQ(fake_.only_partition().pushes.size(), 0u);
    ASSERT_TRUE(batch.Commit());
  }
  EXPECT_EQ(irqfd_->push_count(), 1u);
  EXPECT_EQ(Kernel().size(), 8u);
  EXPECT_EQ(Irqfds().size(), 8u);
  EXPECT_EQ(fake_.log().front(), "push 24 25 26 27 28 29 30 31");
  EXPECT_EQ(Kernel().at(31).data, 0x47u);
}

TEST_F(MshvIrqFdTest, NestedBatchesPushOnceAtTheOutermostEnd) {
  auto a = Route(), b = Route();
  irqfd_->BeginBatch();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  irqfd_->BeginBatch();
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  ASSERT_TRUE(irqfd_->EndBatch());
  EXPECT_EQ(irqfd_->push_count(), 0u);
  ASSERT_TRUE(irqfd_->EndBatch());
  EXPECT_EQ(irqfd_->push_count(), 1u);
  EXPECT_EQ(irqfd_->EndBatch().error().code, ErrorCode::kFailedPrecondition);
}

TEST_F(MshvIrqFdTest, FailedPushRollsBackAndNeverArms) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  auto b = Route();
  fake_.FailNext("SetMsiRouting", 0, ENOMEM);
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  Status s = b->SetMsi(MsiMessage::Fixed(0, 0x41));
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "MSHV_SET_MSI_ROUTING");
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_EQ(Kernel().size(), 1u);
  ::testing::Mock::VerifyAndClearExpectations(mock_.get());
  mock_->DelegateTo(fake_);
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));  // and it works afterwards
  EXPECT_EQ(Kernel().size(), 2u);
}

TEST_F(MshvIrqFdTest, FailedRetargetKeepsTheOldMsi) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  fake_.FailNext("SetMsiRouting");
  ASSERT_FALSE(a->SetMsi(MsiMessage::Fixed(0, 0x50)).has_value());
  EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_EQ(Kernel().at(24).data, 0x40u);
  EXPECT_EQ(Irqfds().size(), 1u);
}

TEST_F(MshvIrqFdTest, FailedBatchPushLeavesEveryNewRouteMasked) {
  auto a = Route(), b = Route();
  irqfd_->BeginBatch();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  fake_.FailNext("SetMsiRouting");
  ASSERT_FALSE(irqfd_->EndBatch().has_value());
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_THAT(Irqfds(), IsEmpty());
}

// A batch's assigns come from MshvIrqFdOps::AssignEach, each with its exact MSHV_IRQFD arguments
// (RESAMPLE for the level MSI); one failing masks its route alone.
TEST_F(MshvIrqFdTest, FailedAssignInABatchMasksOnlyItsRoute) {
  auto a = Route(), b = Route(), c = Route();
  auto* level_route = dynamic_cast<MshvIrqFdRoute*>(b.get());
  const MsiMessage level{0xFEE00000, 0xC035};
  irqfd_->BeginBatch();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(b->SetMsi(level));
  ASSERT_TRUE(c->SetMsi(MsiMessage::Fixed(0, 0x42)));
  ASSERT_NE(level_route->resample_event(), nullptr);
  {
    InSequence seq;
    EXPECT_CALL(*mock_, SetMsiRouting(partition_fd(),
                                      TableIs({{24, 0xFEE00000, 0, 0x0040},
                                               {25, 0xFEE00000, 0, 0xC035},
                                               {26, 0xFEE00000, 0, 0x0042}})));
    EXPECT_CALL(*mock_, Irqfd(partition_fd(), IrqfdIs(a->event().native_handle(), -1, 24, 0)));
    EXPECT_CALL(*mock_,
                Irqfd(partition_fd(),
                      IrqfdIs(b->event().native_handle(),
                              level_route->resample_event()->native_handle(), 25, 2)));
    EXPECT_CALL(*mock_, Irqfd(partition_fd(), IrqfdIs(c->event().native_handle(), -1, 26, 0)));
    EXPECT_CALL(*mock_, SetMsiRouting(partition_fd(),
                                      TableIs({{24, 0xFEE00000, 0, 0x0040},
                                               {26, 0xFEE00000, 0, 0x0042}})));
  }
  fake_.FailNext("Irqfd", 1, EBADF);
  Status s = irqfd_->EndBatch();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "MSHV_IRQFD");
  EXPECT_EQ(s.error().native_code, EBADF);
  Verified();
  EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_EQ(c->msi(), MsiMessage::Fixed(0, 0x42));
  EXPECT_EQ(Kernel().size(), 2u);
  EXPECT_EQ(Irqfds().size(), 2u);
  EXPECT_EQ(Irqfds().count(25), 0u);
}

TEST_F(MshvIrqFdTest, FailedAssignRemovesTheEntryAgain) {
  auto a = Route();
  fake_.FailNext("Irqfd", 0, EBADF);
  Status s = a->SetMsi(MsiMessage::Fixed(0, 0x40));
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "MSHV_IRQFD");
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_THAT(fake_.log(), ElementsAre("push 24", "push"));
}

TEST_F(MshvIrqFdTest, FailedDeassignKeepsTheRouteArmedAndItsEntry) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  fake_.FailNext("Irqfd");
  ASSERT_FALSE(a->ClearMsi().has_value());
  EXPECT_EQ(a->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_EQ(Kernel().size(), 1u);
  ASSERT_TRUE(a->ClearMsi());
  EXPECT_THAT(Kernel(), IsEmpty());
}

TEST_F(MshvIrqFdTest, LevelTriggeredMsiRegistersAResampleIrqfd) {
  auto r = Route();
  auto* route = dynamic_cast<MshvIrqFdRoute*>(r.get());
  const MsiMessage level{0xFEE00000, 0xC035};  // level, asserted, vector 0x35
  ASSERT_TRUE(r->SetMsi(level));
  ASSERT_NE(route->resample_event(), nullptr);
  const mshv_user_irqfd& armed = Irqfds().at(24);
  EXPECT_EQ(armed.flags, 2u);  // RESAMPLE
  EXPECT_EQ(armed.resamplefd, route->resample_event()->native_handle());
  EXPECT_EQ(armed.fd, r->event().native_handle());
  // Level -> edge re-registers: deassign, push, assign without RESAMPLE.
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x35)));
  EXPECT_THAT(fake_.log(), ElementsAre("push 24", "assign-resample 24", "deassign 24", "push 24",
                                       "assign 24"));
  EXPECT_EQ(Irqfds().at(24).flags, 0u);
  EXPECT_NE(route->resample_event(), nullptr);  // kept for the next level MSI
}

TEST_F(MshvIrqFdTest, GsiExhaustionAfter2024Routes) {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (uint32_t i = 0; i < kUsableGsis; ++i) {
    auto r = irqfd_->NewRoute();
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().Message();
    ASSERT_EQ((*r)->gsi(), kFirstMsiGsi + i);
    routes.push_back(std::move(*r));
  }
  auto full = irqfd_->NewRoute();
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kExhausted);
  const Gsi freed = routes[100]->gsi();
  routes[100].reset();
  auto again = irqfd_->NewRoute();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)->gsi(), freed);
}

TEST_F(MshvIrqFdTest, GsiIsNotReusedUntilAPushWithoutItsEntry) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  irqfd_->BeginBatch();
  a.reset();
  auto b = Route();
  EXPECT_NE(b->gsi(), 24u);  // 24 is still in the kernel's table
  ASSERT_TRUE(irqfd_->EndBatch());
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_EQ(Route()->gsi(), 24u);
}

TEST_F(MshvIrqFdTest, ReleaseReportsAndCannotRepeat) {
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(a->Release());
  EXPECT_EQ(a->Release().error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(a->SetMsi(MsiMessage::Fixed(0, 0x40)).error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  a.reset();
}

TEST_F(MshvIrqFdTest, DestructorFailuresGoToTheErrorHandler) {
  std::vector<std::string> errors;
  irqfd_->SetErrorHandler([&](const Error& e) { errors.push_back(e.operation); });
  auto a = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  fake_.FailNext("Irqfd");
  a.reset();
  EXPECT_THAT(errors, ElementsAre("MSHV_IRQFD"));
  // The irqfd still points at the entry until the eventfd closes, so the entry stays until the
  // next push, and GSI 24 with it.
  EXPECT_EQ(Kernel().size(), 1u);
  auto b = Route();
  EXPECT_EQ(b->gsi(), 25u);
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  EXPECT_THAT(Kernel(), ElementsAre(::testing::Key(25u)));
  EXPECT_EQ(Route()->gsi(), 24u);
}

TEST_F(MshvIrqFdTest, RoutesOutlivingThePartitionFailWithPartitionGone) {
  auto a = Route(), b = Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  EXPECT_CALL(*mock_, Irqfd(_, _)).Times(0);
  EXPECT_CALL(*mock_, SetMsiRouting(_, _)).Times(0);
  partition_.reset();
  EXPECT_EQ(a->SetMsi(MsiMessage::Fixed(0, 0x41)).error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(b->ClearMsi().error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_EQ(b->Release().error().code, ErrorCode::kPartitionGone);
  a.reset();
  b.reset();
}

TEST_F(MshvIrqFdTest, ConcurrentRoutesKeepTheOrderingRules) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = irqfd_->NewRoute();
        ASSERT_TRUE(r.has_value());
        ASSERT_TRUE((*r)->SetMsi(MsiMessage::Fixed(static_cast<uint8_t>(t), 0x40)));
        if (i % 2) {
          ASSERT_TRUE((*r)->ClearMsi());
        }
        if (i % 3 == 0) {
          RouteBatch batch(*irqfd_);
          ASSERT_TRUE((*r)->SetMsi(MsiMessage::Fixed(static_cast<uint8_t>(t), 0x41)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(Kernel(), IsEmpty());
  EXPECT_THAT(Irqfds(), IsEmpty());
}

}  // namespace
}  // namespace virt::mshv::test
