// One typed IrqFd contract suite run against both backends' fakes (KVM and MSHV): masking,
// arm-after-push ordering, batching, rollback, GSI reuse/exhaustion, partition teardown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "mock_kvm_ioctl.h"
#include "mshv_fake.h"
#include "virt/mshv/mshv_hypervisor.h"

namespace virt::test {
namespace {

// The KVM backend over tests/kvm's FakeKvm.
struct KvmBackend {
  kvm::test::FakeKvm kvm;
  std::unique_ptr<Hypervisor> Open() {
    kvm::test::EnsureFdLimit(8192);
    auto h = kvm::KvmHypervisor::Create(kvm.mock);
    return h ? std::unique_ptr<Hypervisor>(std::move(*h)) : nullptr;
  }
  void FailNextPush() { kvm.state->FailCall("KVM_SET_GSI_ROUTING"); }
  void FailNextIrqfd() { kvm.state->FailCall("KVM_IRQFD"); }
  std::vector<std::string> Problems() { return kvm.state->problems(); }
  size_t KernelMsiEntries() { return kvm::test::MsiEntries(kvm.state->last_table()).size(); }
  static constexpr uint32_t kUsable = kvm::test::kUsableGsis;
};

// The MSHV backend over FakeMshv.
struct MshvBackend {
  mshv::test::FakeMshv fake;
  std::unique_ptr<Hypervisor> Open() {
    auto h = mshv::MshvHypervisor::Create(
        std::shared_ptr<mshv::MshvIoctl>(&fake, [](mshv::MshvIoctl*) {}));
    return h ? std::unique_ptr<Hypervisor>(std::move(*h)) : nullptr;
  }
  void FailNextPush() { fake.FailNext("SetMsiRouting"); }
  void FailNextIrqfd() { fake.FailNext("Irqfd"); }
  std::vector<std::string> Problems() { return fake.violations(); }
  size_t KernelMsiEntries() {
    return fake.partitions().empty() ? 0 : fake.partitions().begin()->second.table.size();
  }
  static constexpr uint32_t kUsable = mshv::test::kUsableGsis;
};

template <typename Backend>
class IrqFdContract : public ::testing::Test {
 protected:
  void SetUp() override {
    hypervisor_ = backend_.Open();
    ASSERT_NE(hypervisor_, nullptr);
    auto p = hypervisor_->CreatePartition(PartitionConfig{1, true});
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
    irqfd_ = partition_->irqfd();
    ASSERT_NE(irqfd_, nullptr);
  }
  void TearDown() override { EXPECT_THAT(backend_.Problems(), ::testing::IsEmpty()); }
  std::unique_ptr<IrqFdRoute> Route() {
    auto r = irqfd_->NewRoute();
    EXPECT_TRUE(r.has_value()) << r.error().Message();
    return r ? std::move(*r) : nullptr;
  }

  Backend backend_;
  std::unique_ptr<Hypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  IrqFd* irqfd_ = nullptr;
};

using Backends = ::testing::Types<KvmBackend, MshvBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, KvmBackend> ? "kvm" : "mshv";
  }
};
TYPED_TEST_SUITE(IrqFdContract, Backends, BackendNames);

TYPED_TEST(IrqFdContract, NewRouteIsMaskedAndCostsNoPush) {
  auto r = this->Route();
  EXPECT_EQ(r->gsi(), 24u);
  EXPECT_EQ(r->msi(), std::nullopt);
  EXPECT_EQ(this->irqfd_->push_count(), 0u);
}

TYPED_TEST(IrqFdContract, SetMsiPushesOnceAndArms) {
  auto r = this->Route();
  ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
  EXPECT_EQ(r->msi(), MsiMessage::Fixed(0, 0x40));
  EXPECT_EQ(this->irqfd_->push_count(), 1u);
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 1u);
}

TYPED_TEST(IrqFdContract, BatchOfSixteenCostsOnePush) {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < 16; ++i) routes.push_back(this->Route());
  {
    RouteBatch batch(*this->irqfd_);
    for (auto& r : routes) ASSERT_TRUE(r->SetMsi(MsiMessage::Fixed(0, 0x40)));
    ASSERT_TRUE(batch.Commit());
  }
  EXPECT_EQ(this->irqfd_->push_count(), 1u);
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 16u);
  {
    RouteBatch batch(*this->irqfd_);
    routes.clear();
  }
  EXPECT_EQ(this->irqfd_->push_count(), 2u);
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 0u);
}

TYPED_TEST(IrqFdContract, FailedPushRollsBackToWhatTheKernelHolds) {
  auto a = this->Route(), b = this->Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  this->backend_.FailNextPush();
  EXPECT_FALSE(b->SetMsi(MsiMessage::Fixed(0, 0x41)).has_value());
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 1u);
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 2u);
}

TYPED_TEST(IrqFdContract, FailedBatchPushLeavesNewRoutesMasked) {
  auto a = this->Route(), b = this->Route();
  this->irqfd_->BeginBatch();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  ASSERT_TRUE(b->SetMsi(MsiMessage::Fixed(0, 0x41)));
  this->backend_.FailNextPush();
  EXPECT_FALSE(this->irqfd_->EndBatch().has_value());
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_EQ(b->msi(), std::nullopt);
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 0u);
}

TYPED_TEST(IrqFdContract, FailedArmLeavesTheRouteMaskedAndTheTableClean) {
  auto a = this->Route();
  this->backend_.FailNextIrqfd();
  EXPECT_FALSE(a->SetMsi(MsiMessage::Fixed(0, 0x40)).has_value());
  EXPECT_EQ(a->msi(), std::nullopt);
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 0u);
}

TYPED_TEST(IrqFdContract, DroppedRouteGsiIsReused) {
  auto a = this->Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  const Gsi gsi = a->gsi();
  a.reset();
  EXPECT_EQ(this->backend_.KernelMsiEntries(), 0u);
  EXPECT_EQ(this->Route()->gsi(), gsi);
}

TYPED_TEST(IrqFdContract, GsiExhaustion) {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (uint32_t i = 0; i < TypeParam::kUsable; ++i) {
    auto r = this->irqfd_->NewRoute();
    ASSERT_TRUE(r.has_value()) << i << ": " << r.error().Message();
    routes.push_back(std::move(*r));
  }
  auto full = this->irqfd_->NewRoute();
  ASSERT_FALSE(full.has_value());
  EXPECT_EQ(full.error().code, ErrorCode::kExhausted);
}

TYPED_TEST(IrqFdContract, RoutesOutlivingThePartitionFailWithPartitionGone) {
  auto a = this->Route();
  ASSERT_TRUE(a->SetMsi(MsiMessage::Fixed(0, 0x40)));
  this->partition_.reset();
  auto s = a->SetMsi(MsiMessage::Fixed(0, 0x41));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(a->msi(), std::nullopt);
  a.reset();  // no deassign, no push: the partition fd took everything with it
}

}  // namespace
}  // namespace virt::test
