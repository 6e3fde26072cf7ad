// MshvTest: a fixture with a NiceMock<MockMshvIoctl> that delegates to a FakeMshv, and helpers
// that build a hypervisor, partition and vCPU on it.
#pragma once

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "mshv_fake.h"
#include "virt/mshv/mshv_hypervisor.h"

namespace virt::mshv::test {

// MSHV_IOEVENTFD flags: 1 << MSHV_IOEVENTFD_BIT_DATAMATCH / _PIO / _DEASSIGN.
inline constexpr uint32_t kDatamatch = 1, kPio = 2, kDeassign = 4;

// Entries in /proc/self/fd (the directory stream's own included): compare before and after.
inline int OpenFdCount() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

class MshvTest : public ::testing::Test {
 protected:
  MshvTest() : mock_(std::make_shared<::testing::NiceMock<MockMshvIoctl>>()) {
    mock_->DelegateTo(fake_);
  }
  // Nothing the backend did broke an ABI or ordering rule the fake checks.
  void TearDown() override { EXPECT_THAT(fake_.violations(), ::testing::IsEmpty()); }

  std::unique_ptr<MshvHypervisor> OpenHypervisor(MshvOptions options = {}) {
    auto h = MshvHypervisor::Create(mock_, options);
    EXPECT_TRUE(h.has_value()) << h.error().Message();
    return h ? std::move(*h) : nullptr;
  }
  std::unique_ptr<Partition> NewPartition(MshvHypervisor& h, PartitionConfig config = {}) {
    auto p = h.CreatePartition(config);
    EXPECT_TRUE(p.has_value()) << p.error().Message();
    return p ? std::move(*p) : nullptr;
  }
  // A hypervisor + partition (irqchip, 2 vCPUs) + vCPU 0, kept in the fixture.
  void SetUpVcpu() {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{2, true});
    auto v = partition_->CreateVcpu(0);
    ASSERT_TRUE(v.has_value()) << v.error().Message();
    vcpu_ = std::move(*v);
  }
  // Checks and drops the test's EXPECT_CALLs, so teardown calls go to the fake unchecked.
  void Verified() {
    ::testing::Mock::VerifyAndClearExpectations(mock_.get());
    mock_->DelegateTo(fake_);
  }
  int partition_fd() { return fake_.partitions().begin()->first; }

  FakeMshv fake_;
  std::shared_ptr<::testing::NiceMock<MockMshvIoctl>> mock_;
  std::unique_ptr<MshvHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  std::unique_ptr<Vcpu> vcpu_;
};

}  // namespace virt::mshv::test
