// KVM IrqFd routes against a mocked KvmIoctl: GSI allocation, push/assign ordering, teardown, batching, exhaustion, partition loss, threads.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::InSequence;

class KvmIrqFdTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 1, .irqchip = true});
    ASSERT_NE(part_, nullptr);
    irqfd_ = part_->irqfd();
    ASSERT_NE(irqfd_, nullptr);
    irqfd_->SetErrorHandler([this](const Error& e) { reported_.push_back(e); });
  }
  void TearDown() override {
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
    EXPECT_TRUE(reported_.empty()) << reported_.front().Message();
  }

  std::unique_ptr<IrqFdRoute> NewRoute() {
    auto r = irqfd_->NewRoute();
    EXPECT_TRUE(r.has_value()) << r.error().Message();
    return r ? std::move(*r) : nullptr;
  }

  static auto IsAssign(const IrqFdRoute& route) {
    return AllOf(Field(&kvm_irqfd::fd, static_cast<uint32_t>(route.event().native_handle())),
                 Field(&kvm_irqfd::gsi, route.gsi()), Field(&kvm_irqfd::flags, 0u));
  }
  static auto IsDeassign(const IrqFdRoute& route) {
    return AllOf(Field(&kvm_irqfd::fd, static_cast<uint32_t>(route.event().native_handle())),
                 Field(&kvm_irqfd::gsi, route.gsi()),
                 Field(&kvm_irqfd::flags, static_cast<uint32_t>(KVM_IRQFD_FLAG_DEASSIGN)));
  }

  bool Armed(const IrqFdRoute& route) {
    return fake().irqfd_assigned(route.event().native_handle(), route.gsi());
  }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  IrqFd* irqfd_ = nullptr;
  std::vector<Error> reported_;
};

TEST_F(KvmIrqFdTest, RoutesGetGsisFrom24UpwardAndStartMasked) {
  const size_t before = fake().call_count();
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (uint32_t i = 0; i < 5; ++i) {
    routes.push_back(NewRoute());
    ASSERT_NE(routes.back(), nullptr);
    EXPECT_EQ(routes.back()->gsi(), kFirstMsiGsi + i);
    EXPECT_TRUE(routes.back()->event().valid());
    EXPECT_EQ(routes.back()->msi(), std::nullopt);
  }
  EXPECT_NE(routes[0]->event().native_handle(), routes[1]->event().native_handle());
  EXPECT_EQ(fake().call_count(), before) << "a new route is masked: no ioctl";
  routes.clear();  // never armed: destruction makes no ioctl either
  EXPECT_EQ(fake().call_count(), before);
  std::set<Gsi> again;
  for (int i = 0; i < 5; ++i) {
    routes.push_back(NewRoute());
    again.insert(routes.back()->gsi());
  }
  EXPECT_EQ(again, (std::set<Gsi>{24, 25, 26, 27, 28})) << "all five GSIs were freed";
}

TEST_F(KvmIrqFdTest, SetMsiOnANewRoutePushesThenAssigns) {
  auto route = NewRoute();
  ASSERT_NE(route, nullptr);
  const MsiMessage msi{0x200'FEE03000ull, 0x4041};
  {
    InSequence seq;
    EXPECT_CALL(mock(), SetGsiRouting(kVmFd, Field(&kvm_irq_routing::nr, kIrqchipEntries + 1)));
    EXPECT_CALL(mock(), Irqfd(kVmFd, IsAssign(*route)));
  }
  VIRT_ASSERT_OK(route->SetMsi(msi));
  ::testing::Mock::VerifyAndClearExpectations(&mock());

  const RoutingTable table = fake().last_table();
  ASSERT_EQ(table.size(), kIrqchipEntries + 1);
  EXPECT_TRUE(HasIrqchipDefaults(table));
  const kvm_irq_routing_entry& e = table.back();
  EXPECT_EQ(e.gsi, route->gsi());
  EXPECT_EQ(e.type, static_cast<uint32_t>(KVM_IRQ_ROUTING_MSI));
  EXPECT_EQ(e.flags, 0u);
  EXPECT_EQ(e.u.msi.address_lo, 0xFEE03000u);
  EXPECT_EQ(e.u.msi.address_hi, 0x200u);
  EXPECT_EQ(e.u.msi.data, 0x4041u);
  EXPECT_EQ(route->msi(), msi);
  EXPECT_TRUE(Armed(*route));
  EXPECT_EQ(irqfd_->push_count(), 1u);
}

TEST_F(KvmIrqFdTest, TablesCarryEveryEnabledRouteAfterTheIrqchipDefaults) {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (uint8_t i = 0; i < 3; ++i) {
    routes.push_back(NewRoute());
    VIRT_ASSERT_OK(routes.back()->SetMsi(Msi(i, 0x30 + i)));
  }
  const auto history = fake().push_history();
  ASSERT_EQ(history.size(), 3u);
  for (size_t n = 0; n < 3; ++n) {
    EXPECT_TRUE(HasIrqchipDefaults(history[n]));
    EXPECT_EQ(history[n].size(), kIrqchipEntries + n + 1);
  }
  EXPECT_EQ(MsiEntries(history[2]),
            (std::map<uint32_t, MsiMessage>{{24, Msi(0, 0x30)}, {25, Msi(1, 0x31)},
                                            {26, Msi(2, 0x32)}}));
}

TEST_F(KvmIrqFdTest, RetargetIsOnePushAndNoIrqfdCall) {
  auto route = NewRoute();
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  EXPECT_CALL(mock(), Irqfd(_, _)).Times(0);
  EXPECT_CALL(mock(), SetGsiRouting(kVmFd, _)).Times(1);
  VIRT_ASSERT_OK(route->SetMsi(Msi(1, 0x31)));
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_EQ(MsiEntries(fake().last_table()),
            (std::map<uint32_t, MsiMessage>{{route->gsi(), Msi(1, 0x31)}}));
  EXPECT_EQ(route->msi(), Msi(1, 0x31));
  EXPECT_TRUE(Armed(*route));

  // Setting the same MSI again changes nothing and costs nothing.
  const size_t before = fake().call_count();
  VIRT_ASSERT_OK(route->SetMsi(Msi(1, 0x31)));
  EXPECT_EQ(fake().call_count(), before);
}

TEST_F(KvmIrqFdTest, ClearMsiDeassignsBeforePushingTheTableWithoutTheEntry) {
  auto keep = NewRoute();
  auto route = NewRoute();
  VIRT_ASSERT_OK(keep->SetMsi(Msi(0, 0x30)));
  VIRT_ASSERT_OK(route->SetMsi(Msi(1, 0x31)));
  {
    InSequence seq;
    EXPECT_CALL(mock(), Irqfd(kVmFd, IsDeassign(*route)));
    EXPECT_CALL(mock(), SetGsiRouting(kVmFd, Field(&kvm_irq_routing::nr, kIrqchipEntries + 1)));
  }
  VIRT_ASSERT_OK(route->ClearMsi());
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_EQ(MsiEntries(fake().last_table()),
            (std::map<uint32_t, MsiMessage>{{keep->gsi(), Msi(0, 0x30)}}));
  EXPECT_EQ(route->msi(), std::nullopt);
  EXPECT_FALSE(Armed(*route));
  EXPECT_TRUE(Armed(*keep));

  // Clearing a masked route is free; re-enabling it pushes and assigns again.
  const size_t before = fake().call_count();
  VIRT_ASSERT_OK(route->ClearMsi());
  EXPECT_EQ(fake().call_count(), before);
  {
    InSequence seq;
    EXPECT_CALL(mock(), SetGsiRouting(kVmFd, _));
    EXPECT_CALL(mock(), Irqfd(kVmFd, IsAssign(*route)));
  }
  VIRT_ASSERT_OK(route->SetMsi(Msi(2, 0x32)));
  ::testing::Mock::VerifyAndClearExpectations(&mock());
}

TEST_F(KvmIrqFdTest, AClearMsiWhosePushFailsStillLeavesTheRouteMasked) {
  auto route = NewRoute();
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  fake().FailCall("KVM_SET_GSI_ROUTING", 0, ENOMEM);
  Status s = route->ClearMsi();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_SET_GSI_ROUTING");
  EXPECT_FALSE(Armed(*route));
  EXPECT_EQ(route->msi(), std::nullopt) << "deassigned: it delivers nothing";
  EXPECT_TRUE(HasMsiEntry(fake().last_table(), route->gsi()));  // the kernel kept the entry
  // Clearing again retries the push; enabling again re-arms.
  VIRT_ASSERT_OK(route->ClearMsi());
  EXPECT_FALSE(HasMsiEntry(fake().last_table(), route->gsi()));
  VIRT_ASSERT_OK(route->SetMsi(Msi(1, 0x31)));
  EXPECT_TRUE(Armed(*route));
  EXPECT_EQ(route->msi(), Msi(1, 0x31));
}

TEST_F(KvmIrqFdTest, AFailedAssignUndoesTheEntry) {
  auto route = NewRoute();
  fake().FailCall("KVM_IRQFD", 0, EBUSY);
  Status s = route->SetMsi(Msi(0, 0x30));
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_IRQFD");
  EXPECT_EQ(s.error().native_code, EBUSY);
  EXPECT_EQ(route->msi(), std::nullopt);
  EXPECT_FALSE(HasMsiEntry(fake().last_table(), route->gsi())) << "pushed again without it";
  EXPECT_EQ(fake().pushes(), 2u);
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  EXPECT_TRUE(Armed(*route));
}

TEST_F(KvmIrqFdTest, DestroyingAnArmedRouteDeassignsPushesThenFreesTheGsi) {
  auto keep = NewRoute();
  auto route = NewRoute();
  VIRT_ASSERT_OK(keep->SetMsi(Msi(0, 0x30)));
  VIRT_ASSERT_OK(route->SetMsi(Msi(1, 0x31)));
  const Gsi gsi = route->gsi();
  {
    InSequence seq;
    EXPECT_CALL(mock(), Irqfd(kVmFd, IsDeassign(*route)));
    EXPECT_CALL(mock(), SetGsiRouting(kVmFd, Field(&kvm_irq_routing::nr, kIrqchipEntries + 1)));
  }
  route.reset();
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_FALSE(HasMsiEntry(fake().last_table(), gsi));
  EXPECT_EQ(NewRoute()->gsi(), gsi);  // the GSI is free again
}

TEST_F(KvmIrqFdTest, InvalidMsiIsRejectedWithoutAnIoctl) {
  auto route = NewRoute();
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  const size_t before = fake().call_count();
  for (MsiMessage bad : {MsiMessage{0xFED00000, 0x30}, MsiMessage{0, 0},
                         MsiMessage{0x0000'00FF'FEE00000ull, 0x30},
                         MsiMessage{0xFEE00000, 0x630}}) {  // reserved delivery mode 6
    EXPECT_THAT(route->SetMsi(bad), IsErrorCode(ErrorCode::kInvalidArgument))
        << std::hex << bad.address << " " << bad.data;
  }
  EXPECT_EQ(fake().call_count(), before);
  EXPECT_EQ(route->msi(), Msi(0, 0x30));  // unchanged
  auto fresh = NewRoute();
  EXPECT_THAT(fresh->SetMsi(MsiMessage{0xFED00000, 0x30}),
              IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_EQ(fake().call_count(), before);
}

TEST_F(KvmIrqFdTest, ABatchOfAHundredRoutesIsOnePushThenAHundredAssigns) {
  constexpr int kRoutes = 100;
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < kRoutes; ++i) routes.push_back(NewRoute());
  const uint64_t pushes_before = irqfd_->push_count();
  const size_t calls_before = fake().call_count();
  {
    RouteBatch batch(*irqfd_);
    for (int i = 0; i < kRoutes; ++i) {
      VIRT_ASSERT_OK(routes[i]->SetMsi(Msi(static_cast<uint8_t>(i), 0x40)));
    }
    EXPECT_EQ(fake().call_count(), calls_before) << "nothing reaches KVM inside the batch";
    EXPECT_EQ(irqfd_->push_count(), pushes_before);
    for (const auto& r : routes) EXPECT_FALSE(Armed(*r));
    VIRT_ASSERT_OK(batch.Commit());
    VIRT_EXPECT_OK(batch.Commit());  // later calls are no-ops
  }
  EXPECT_EQ(irqfd_->push_count(), pushes_before + 1);
  const auto calls = fake().calls_since(calls_before);
  ASSERT_EQ(calls.size(), 1u + kRoutes);
  EXPECT_EQ(calls[0], "KVM_SET_GSI_ROUTING");
  for (int i = 1; i <= kRoutes; ++i) EXPECT_EQ(calls[i], "KVM_IRQFD") << i;

  const RoutingTable table = fake().last_table();
  ASSERT_EQ(table.size(), kIrqchipEntries + kRoutes);
  EXPECT_TRUE(HasIrqchipDefaults(table));
  const auto entries = MsiEntries(table);
  ASSERT_EQ(entries.size(), static_cast<size_t>(kRoutes));
  for (int i = 0; i < kRoutes; ++i) {
    EXPECT_EQ(entries.at(routes[i]->gsi()), Msi(static_cast<uint8_t>(i), 0x40));
    EXPECT_TRUE(Armed(*routes[i]));
  }
  const auto irqfds = fake().irqfd_calls();
  for (size_t i = irqfds.size() - kRoutes; i < irqfds.size(); ++i) {
    EXPECT_EQ(irqfds[i].flags, 0u);
  }
}

// The batch's assigns run in the backend's own loop (KvmIrqFdOps::AssignEach): one that fails
// does not stop the others, and only its route is masked again, its entry pushed away.
TEST_F(KvmIrqFdTest, AFailedAssignInABatchMasksThatRouteAloneAndTheOthersStayArmed) {
  auto a = NewRoute();
  auto b = NewRoute();
  auto c = NewRoute();
  const size_t calls_before = fake().call_count();
  const size_t irqfds_before = fake().irqfd_calls().size();
  RouteBatch batch(*irqfd_);
  VIRT_ASSERT_OK(a->SetMsi(Msi(0, 0x40)));
  VIRT_ASSERT_OK(b->SetMsi(Msi(1, 0x41)));
  VIRT_ASSERT_OK(c->SetMsi(Msi(2, 0x42)));
  fake().FailCall("KVM_IRQFD", 1, EBADF);  // the second assign
  Status s = batch.Commit();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_IRQFD");
  EXPECT_EQ(s.error().native_code, EBADF);

  EXPECT_THAT(fake().calls_since(calls_before),
              ElementsAre("KVM_SET_GSI_ROUTING", "KVM_IRQFD", "KVM_IRQFD", "KVM_IRQFD",
                          "KVM_SET_GSI_ROUTING"));
  const auto irqfds = fake().irqfd_calls();
  ASSERT_EQ(irqfds.size(), irqfds_before + 3);
  EXPECT_THAT(irqfds[irqfds_before], IsAssign(*a));
  EXPECT_THAT(irqfds[irqfds_before + 1], IsAssign(*b));
  EXPECT_THAT(irqfds[irqfds_before + 2], IsAssign(*c));
  EXPECT_TRUE(Armed(*a));
  EXPECT_FALSE(Armed(*b));
  EXPECT_TRUE(Armed(*c));
  EXPECT_EQ(a->msi(), Msi(0, 0x40));
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_EQ(c->msi(), Msi(2, 0x42));
  EXPECT_EQ(MsiEntries(fake().last_table()),
            (std::map<uint32_t, MsiMessage>{{a->gsi(), Msi(0, 0x40)}, {c->gsi(), Msi(2, 0x42)}}));
  EXPECT_THAT(fake().TakeProblems(), ::testing::IsEmpty());

  // The masked route enables normally afterwards.
  VIRT_ASSERT_OK(b->SetMsi(Msi(1, 0x41)));
  EXPECT_TRUE(Armed(*b));
  EXPECT_EQ(MsiEntries(fake().last_table()).size(), 3u);
}

TEST_F(KvmIrqFdTest, ABatchCoalescesEnableRetargetAndClear) {
  auto a = NewRoute();
  auto b = NewRoute();
  auto c = NewRoute();
  VIRT_ASSERT_OK(a->SetMsi(Msi(0, 0x30)));  // armed before the batch
  VIRT_ASSERT_OK(b->SetMsi(Msi(0, 0x31)));
  const uint64_t pushes = fake().pushes();
  {
    RouteBatch batch(*irqfd_);
    VIRT_ASSERT_OK(a->SetMsi(Msi(1, 0x30)));  // retarget
    VIRT_ASSERT_OK(b->ClearMsi());           // deassigned right away, entry leaves on commit
    EXPECT_FALSE(Armed(*b));
    VIRT_ASSERT_OK(c->SetMsi(Msi(2, 0x32)));
    VIRT_ASSERT_OK(c->SetMsi(Msi(3, 0x33)));  // twice in one batch: still one assign
    EXPECT_EQ(fake().pushes(), pushes);
  }
  EXPECT_EQ(fake().pushes(), pushes + 1);
  EXPECT_EQ(MsiEntries(fake().last_table()),
            (std::map<uint32_t, MsiMessage>{{a->gsi(), Msi(1, 0x30)}, {c->gsi(), Msi(3, 0x33)}}));
  EXPECT_TRUE(Armed(*a));
  EXPECT_FALSE(Armed(*b));
  EXPECT_TRUE(Armed(*c));
  EXPECT_EQ(b->msi(), std::nullopt);
}

TEST_F(KvmIrqFdTest, ARouteEnabledAndClearedInOneBatchIsNeverArmed) {
  auto r = NewRoute();
  const size_t before = fake().call_count();
  {
    RouteBatch batch(*irqfd_);
    VIRT_ASSERT_OK(r->SetMsi(Msi(0, 0x30)));
    VIRT_ASSERT_OK(r->ClearMsi());
  }
  for (const std::string& call : fake().calls_since(before)) EXPECT_NE(call, "KVM_IRQFD");
  EXPECT_FALSE(Armed(*r));
  EXPECT_FALSE(HasMsiEntry(fake().last_table(), r->gsi()));
}

TEST_F(KvmIrqFdTest, NestedBatchesPushOnceAtTheOutermostEnd) {
  auto a = NewRoute();
  auto b = NewRoute();
  const uint64_t pushes = irqfd_->push_count();
  irqfd_->BeginBatch();
  VIRT_ASSERT_OK(a->SetMsi(Msi(0, 0x30)));
  {
    RouteBatch inner(*irqfd_);
    VIRT_ASSERT_OK(b->SetMsi(Msi(0, 0x31)));
    VIRT_ASSERT_OK(inner.Commit());
  }
  EXPECT_EQ(irqfd_->push_count(), pushes);
  EXPECT_FALSE(Armed(*a));
  EXPECT_FALSE(Armed(*b));
  VIRT_ASSERT_OK(irqfd_->EndBatch());
  EXPECT_EQ(irqfd_->push_count(), pushes + 1);
  EXPECT_EQ(fake().pushes(), pushes + 1);
  EXPECT_TRUE(Armed(*a));
  EXPECT_TRUE(Armed(*b));
}

TEST_F(KvmIrqFdTest, EndBatchWithoutBeginBatchIsAFailedPrecondition) {
  EXPECT_THAT(irqfd_->EndBatch(), IsErrorCode(ErrorCode::kFailedPrecondition));
  irqfd_->BeginBatch();
  VIRT_EXPECT_OK(irqfd_->EndBatch());
  EXPECT_THAT(irqfd_->EndBatch(), IsErrorCode(ErrorCode::kFailedPrecondition));
}

TEST_F(KvmIrqFdTest, AnEmptyBatchPushesNothing) {
  const size_t before = fake().call_count();
  { RouteBatch batch(*irqfd_); }
  EXPECT_EQ(fake().call_count(), before);
  EXPECT_EQ(irqfd_->push_count(), 0u);
}

TEST_F(KvmIrqFdTest, AGsiDroppedInABatchIsReusedOnlyAfterTheCommit) {
  auto a = NewRoute();
  VIRT_ASSERT_OK(a->SetMsi(Msi(0, 0x30)));
  const Gsi gsi = a->gsi();
  irqfd_->BeginBatch();
  a.reset();  // deassigned now; the entry stays in the kernel table until the push
  EXPECT_TRUE(HasMsiEntry(fake().last_table(), gsi));
  auto b = NewRoute();
  EXPECT_NE(b->gsi(), gsi) << "the kernel still routes this GSI";
  VIRT_ASSERT_OK(irqfd_->EndBatch());
  EXPECT_FALSE(HasMsiEntry(fake().last_table(), gsi));
  EXPECT_EQ(NewRoute()->gsi(), gsi);
}

TEST_F(KvmIrqFdTest, AFailedBatchPushLeavesRoutesMaskedAndTheTableAsTheKernelHasIt) {
  auto a = NewRoute();
  auto b = NewRoute();
  VIRT_ASSERT_OK(a->SetMsi(Msi(0, 0x30)));
  const RoutingTable kernel = fake().last_table();
  fake().FailCall("KVM_SET_GSI_ROUTING", 0, ENOMEM);
  RouteBatch batch(*irqfd_);
  VIRT_ASSERT_OK(a->SetMsi(Msi(1, 0x30)));
  VIRT_ASSERT_OK(b->SetMsi(Msi(1, 0x31)));
  Status s = batch.Commit();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_SET_GSI_ROUTING");
  EXPECT_EQ(s.error().native_code, ENOMEM);
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_FALSE(Armed(*b));
  EXPECT_EQ(a->msi(), Msi(0, 0x30));  // rolled back to what KVM holds
  EXPECT_TRUE(Armed(*a));
  // The next push carries exactly the rolled-back table plus the new change.
  VIRT_ASSERT_OK(b->SetMsi(Msi(2, 0x32)));
  auto want = MsiEntries(kernel);
  want[b->gsi()] = Msi(2, 0x32);
  EXPECT_EQ(MsiEntries(fake().last_table()), want);
}

TEST_F(KvmIrqFdTest, ABatchFailingInItsDestructorReportsToTheErrorHandler) {
  auto a = NewRoute();
  fake().FailCall("KVM_SET_GSI_ROUTING", 0, ENOSPC);
  {
    RouteBatch batch(*irqfd_);
    VIRT_ASSERT_OK(a->SetMsi(Msi(0, 0x30)));
  }
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_STREQ(reported_[0].operation, "KVM_SET_GSI_ROUTING");
  EXPECT_EQ(reported_[0].native_code, ENOSPC);
  reported_.clear();
  EXPECT_FALSE(Armed(*a));
}

TEST_F(KvmIrqFdTest, GsisRunOutAfter4056RoutesWithoutAnIoctl) {
  EnsureFdLimit(kUsableGsis + 256);
  const int fds_before = CountOpenFds();
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  routes.reserve(kUsableGsis);
  std::set<Gsi> gsis;
  const size_t calls_before = fake().call_count();
  for (uint32_t i = 0; i < kUsableGsis; ++i) {
    auto r = irqfd_->NewRoute();
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().Message();
    gsis.insert((*r)->gsi());
    routes.push_back(std::move(*r));
  }
  EXPECT_EQ(gsis.size(), kUsableGsis);
  EXPECT_EQ(*gsis.begin(), kFirstMsiGsi);
  EXPECT_EQ(*gsis.rbegin(), kGsiCapacity - 1);

  auto extra = irqfd_->NewRoute();
  ASSERT_FALSE(extra.has_value());
  EXPECT_EQ(extra.error().code, ErrorCode::kExhausted);
  EXPECT_EQ(fake().call_count(), calls_before);
  EXPECT_EQ(CountOpenFds(), fds_before + static_cast<int>(kUsableGsis))
      << "the failed NewRoute closed its event";

  const Gsi freed = routes[100]->gsi();
  routes[100].reset();
  auto again = irqfd_->NewRoute();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ((*again)->gsi(), freed);
  again->reset();
  routes.clear();
  EXPECT_EQ(CountOpenFds(), fds_before);
}

TEST_F(KvmIrqFdTest, ASmallKernelRoutingTableLimitsTheGsis) {
  part_.reset();
  hv_.reset();
  fake().SetCapability(KVM_CAP_IRQ_ROUTING, 64);  // 48 GSIs, 24 usable
  hv_ = NewHypervisor();
  ASSERT_NE(hv_, nullptr);
  part_ = NewPartition(*hv_);
  ASSERT_NE(part_, nullptr);
  irqfd_ = part_->irqfd();
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < 24; ++i) routes.push_back(NewRoute());
  EXPECT_EQ(routes.back()->gsi(), 47u);
  EXPECT_THAT(irqfd_->NewRoute(), IsErrorCode(ErrorCode::kExhausted));
  // A full table still fits KVM's limit: 40 irqchip entries + 24 MSIs = 64.
  {
    RouteBatch batch(*irqfd_);
    for (auto& r : routes) VIRT_ASSERT_OK(r->SetMsi(Msi(0, 0x30)));
  }
  EXPECT_EQ(fake().last_table().size(), 64u);
}

TEST_F(KvmIrqFdTest, RoutesOutlivingThePartitionFailCleanlyAndTearDownWithoutIoctls) {
  auto armed = NewRoute();
  auto masked = NewRoute();
  VIRT_ASSERT_OK(armed->SetMsi(Msi(0, 0x30)));
  const int fds_with_routes = CountOpenFds();

  EXPECT_CALL(mock(), Close(kVmFd)).Times(1);
  EXPECT_CALL(mock(), Irqfd(_, _)).Times(0);  // no per-route teardown: closing the VM fd does it
  EXPECT_CALL(mock(), SetGsiRouting(_, _)).Times(0);
  part_.reset();
  EXPECT_EQ(fake().close_count(kVmFd), 1);

  EXPECT_THAT(armed->SetMsi(Msi(1, 0x31)), IsErrorCode(ErrorCode::kPartitionGone));
  EXPECT_THAT(armed->ClearMsi(), IsErrorCode(ErrorCode::kPartitionGone));
  EXPECT_THAT(masked->SetMsi(Msi(1, 0x31)), IsErrorCode(ErrorCode::kPartitionGone));
  EXPECT_THAT(masked->ClearMsi(), IsErrorCode(ErrorCode::kPartitionGone));
  EXPECT_THAT(masked->Release(), IsErrorCode(ErrorCode::kPartitionGone));
  EXPECT_THAT(masked->Release(), IsErrorCode(ErrorCode::kAlreadyReleased));
  EXPECT_EQ(armed->msi(), std::nullopt);
  EXPECT_TRUE(armed->event().valid());
  VIRT_EXPECT_OK(armed->event().Signal());  // the event still works; it just goes nowhere

  const size_t before = fake().call_count();
  armed.reset();
  masked.reset();
  EXPECT_EQ(fake().call_count(), before) << ::testing::PrintToString(fake().calls_since(before));
  EXPECT_EQ(CountOpenFds(), fds_with_routes - 2) << "destruction closes the events";
  ::testing::Mock::VerifyAndClearExpectations(&mock());
}

TEST_F(KvmIrqFdTest, ReleaseReturnsTheTeardownOutcomeOnce) {
  auto route = NewRoute();
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  const Gsi gsi = route->gsi();
  {
    InSequence seq;
    EXPECT_CALL(mock(), Irqfd(kVmFd, IsDeassign(*route)));
    EXPECT_CALL(mock(), SetGsiRouting(kVmFd, Field(&kvm_irq_routing::nr, kIrqchipEntries)));
  }
  VIRT_ASSERT_OK(route->Release());
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_EQ(NewRoute()->gsi(), gsi);

  const size_t before = fake().call_count();
  EXPECT_THAT(route->Release(), IsErrorCode(ErrorCode::kAlreadyReleased));
  EXPECT_THAT(route->SetMsi(Msi(0, 0x30)), IsErrorCode(ErrorCode::kAlreadyReleased));
  EXPECT_THAT(route->ClearMsi(), IsErrorCode(ErrorCode::kAlreadyReleased));
  EXPECT_EQ(route->msi(), std::nullopt);
  route.reset();
  EXPECT_EQ(fake().call_count(), before);
}

TEST_F(KvmIrqFdTest, ReleaseReturnsATeardownFailureInsteadOfReportingIt) {
  auto route = NewRoute();
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  const int fd = route->event().native_handle();
  fake().FailCall("KVM_IRQFD", 0, EBADF);
  Status s = route->Release();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_IRQFD");
  EXPECT_EQ(s.error().native_code, EBADF);
  EXPECT_TRUE(reported_.empty());
  route.reset();
  fake().EventClosed(fd);  // KVM drops an irqfd whose eventfd is closed
  // The irqfd pointed at the entry until its eventfd closed, so the entry (and its GSI) stays
  // in the kernel table until the next push, which drops it: no ordering rule is bent.
  EXPECT_THAT(fake().TakeProblems(), ::testing::IsEmpty());
  EXPECT_EQ(fake().last_table().size(), kIrqchipEntries + 1);
  auto next = NewRoute();
  VIRT_ASSERT_OK(next->SetMsi(Msi(0, 0x31)));
  ASSERT_EQ(fake().last_table().size(), kIrqchipEntries + 1);  // only the new route's entry
  EXPECT_EQ(fake().last_table().back().gsi, next->gsi());
}

TEST_F(KvmIrqFdTest, SetErrorHandlerReceivesDestructorFailures) {
  auto route = NewRoute();
  VIRT_ASSERT_OK(route->SetMsi(Msi(0, 0x30)));
  const Gsi gsi = route->gsi();
  fake().FailCall("KVM_SET_GSI_ROUTING", 0, ENOMEM);
  route.reset();
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_STREQ(reported_[0].operation, "KVM_SET_GSI_ROUTING");
  EXPECT_EQ(reported_[0].native_code, ENOMEM);
  reported_.clear();
  // The GSI waits for a push without its entry before it is reused.
  auto next = NewRoute();
  EXPECT_NE(next->gsi(), gsi);
  VIRT_ASSERT_OK(next->SetMsi(Msi(0, 0x31)));
  EXPECT_EQ(MsiEntries(fake().last_table()),
            (std::map<uint32_t, MsiMessage>{{next->gsi(), Msi(0, 0x31)}}));
  EXPECT_EQ(NewRoute()->gsi(), gsi);
}

// 8 threads create, enable, retarget, clear and drop 100 routes each against a permissive fake
// that checks, under its lock, every assign against the last pushed table, every deassign, and
// that no push drops an assigned GSI.
TEST_F(KvmIrqFdTest, ConcurrentRouteChurnKeepsTheOrderingRulesAndTheTables) {
  constexpr int kThreads = 8;
  constexpr int kRoutesPerThread = 100;
  EnsureFdLimit(kUsableGsis + 256);
  fake().KeepPushHistory(false);
  std::vector<std::string> errors[kThreads];
  auto worker = [&](int t) {
    auto fail = [&](const std::string& what, const Status& s) {
      if (!s) errors[t].push_back(what + ": " + s.error().Message());
    };
    std::vector<std::unique_ptr<IrqFdRoute>> routes;
    for (int i = 0; i < kRoutesPerThread; ++i) {
      auto r = irqfd_->NewRoute();
      if (!r) {
        errors[t].push_back("NewRoute: " + r.error().Message());
        return;
      }
      routes.push_back(std::move(*r));
    }
    const auto apic = static_cast<uint8_t>(t);
    if (t % 2 == 0) {
      for (int i = 0; i < kRoutesPerThread; ++i) {
        fail("SetMsi", routes[i]->SetMsi(Msi(apic, static_cast<uint8_t>(0x20 + i))));
      }
    } else {
      RouteBatch batch(*irqfd_);
      for (int i = 0; i < kRoutesPerThread; ++i) {
        fail("SetMsi", routes[i]->SetMsi(Msi(apic, static_cast<uint8_t>(0x20 + i))));
      }
      fail("Commit", batch.Commit());
    }
    for (int i = 0; i < kRoutesPerThread; ++i) {
      fail("retarget", routes[i]->SetMsi(Msi(apic, static_cast<uint8_t>(0x90 + i))));
    }
    for (int i = 0; i < kRoutesPerThread; i += 2) fail("ClearMsi", routes[i]->ClearMsi());
    for (int i = 0; i < kRoutesPerThread; i += 4) fail("Release", routes[i]->Release());
    routes.clear();  // the rest are dropped by their destructors, half of them armed
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_THAT(errors[t], ::testing::IsEmpty()) << "thread " << t;

  EXPECT_THAT(fake().problems(), ::testing::IsEmpty());
  EXPECT_THAT(fake().assigned_irqfds(), ::testing::IsEmpty());
  const RoutingTable last = fake().last_table();
  EXPECT_TRUE(HasIrqchipDefaults(last));
  EXPECT_EQ(last.size(), kIrqchipEntries) << "every route's entry is gone";
  EXPECT_EQ(fake().pushes(), irqfd_->push_count());
  int assigns = 0, deassigns = 0;
  for (const kvm_irqfd& c : fake().irqfd_calls()) {
    (c.flags & KVM_IRQFD_FLAG_DEASSIGN) ? ++deassigns : ++assigns;
  }
  // Routes enabled and cleared inside another thread's batch are never armed, so there are at
  // most as many assigns as routes; each was undone.
  EXPECT_GT(assigns, 0);
  EXPECT_LE(assigns, kThreads * kRoutesPerThread);
  EXPECT_EQ(deassigns, assigns);

  // The GSI table is consistent: all 4056 GSIs can be allocated again, and no more.
  std::vector<std::unique_ptr<IrqFdRoute>> all;
  std::set<Gsi> gsis;
  for (uint32_t i = 0; i < kUsableGsis; ++i) {
    auto r = irqfd_->NewRoute();
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().Message();
    gsis.insert((*r)->gsi());
    all.push_back(std::move(*r));
  }
  EXPECT_EQ(gsis.size(), kUsableGsis);
  EXPECT_EQ(*gsis.begin(), kFirstMsiGsi);
  EXPECT_EQ(*gsis.rbegin(), kGsiCapacity - 1);
  EXPECT_THAT(irqfd_->NewRoute(), IsErrorCode(ErrorCode::kExhausted));
}

}  // namespace
}  // namespace virt::kvm::test
