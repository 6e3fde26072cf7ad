// WhpIrqFdTest: a FakeWhp partition with a WhpTriggerIrqFd, shared by the WHP irqfd suites.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mock_whp_api.h"
#include "virt/irqfd_route.h"
#include "whp_interrupt.h"
#include "whp_irqfd.h"

namespace virt::whp::test {

inline constexpr MsiMessage kMsiA{0xFEE01000, 0x40};  // APIC 1, vector 0x40
inline constexpr MsiMessage kMsiB{0xFEE02000, 0x51};  // APIC 2, vector 0x51
inline constexpr MsiMessage kMsiC{0xFEE03000, 0x62};  // APIC 3, vector 0x62

// The control WHP gets for `msi` (the decoding itself is checked by whp_interrupt_test).
inline WHV_INTERRUPT_CONTROL ControlOf(const MsiMessage& msi) {
  auto control = MsiToInterruptControl(msi);
  EXPECT_TRUE(control.has_value());
  return control ? *control : WHV_INTERRUPT_CONTROL{};
}

inline bool SameTrigger(const FakeWhp::Trigger& a, const FakeWhp::Trigger& b) {
  return a.partition == b.partition && a.event == b.event &&
         std::memcmp(&a.parameters, &b.parameters, sizeof a.parameters) == 0;
}

// Each test starts with a live partition and an irqfd on it, with an empty call log. TearDown
// deletes the partition as the partition object will (Shutdown, then WHvDeletePartition) unless
// the test did, destroys the irqfd and checks that nothing leaked and nothing unexpected went
// to the error handler (tests that expect reports call TakeErrors()).
class WhpIrqFdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto partition = fake_.api()->CreatePartition();
    ASSERT_TRUE(partition.has_value());
    partition_ = *partition;
    auto irqfd = WhpTriggerIrqFd::Create(fake_.api(), partition_);
    ASSERT_TRUE(irqfd.has_value()) << irqfd.error().Message();
    irqfd_ = std::move(*irqfd);
    irqfd_->SetErrorHandler([this](const Error& error) {
      std::lock_guard lock(errors_mu_);
      errors_.push_back(error);
    });
    fake_.ClearLog();
  }

  void TearDown() override {
    if (!partition_deleted_) DeletePartition();
    irqfd_.reset();
    fake_.ExpectNothingLeaked();
    EXPECT_THAT(TakeErrors(), ::testing::IsEmpty()) << "unexpected error reports";
  }

  // What the partition does when it goes: Shutdown, then WHvDeletePartition.
  void DeletePartition() {
    irqfd_->Shutdown();
    ASSERT_TRUE(fake_.api()->DeletePartition(partition_));
    partition_deleted_ = true;
  }

  std::unique_ptr<IrqFdRoute> NewRoute() {
    auto route = irqfd_->NewRoute();
    EXPECT_TRUE(route.has_value()) << route.error().Message();
    return route ? std::move(*route) : nullptr;
  }

  // The one trigger that exists (a test failure when there are none or several).
  FakeWhp::Trigger OnlyTrigger() const {
    const auto triggers = fake_.triggers();
    EXPECT_EQ(triggers.size(), 1u);
    return triggers.empty() ? FakeWhp::Trigger{} : triggers.begin()->second;
  }

  size_t Delivered() const { return fake_.delivered().size(); }

  // The error reports so far ("operation" strings), clearing them.
  std::vector<std::string> TakeErrors() {
    std::lock_guard lock(errors_mu_);
    std::vector<std::string> ops;
    for (const Error& e : errors_) ops.emplace_back(e.operation);
    errors_.clear();
    return ops;
  }

  FakeWhp fake_;
  WHV_PARTITION_HANDLE partition_ = nullptr;
  bool partition_deleted_ = false;
  std::mutex errors_mu_;
  std::vector<Error> errors_;  // guarded by errors_mu_; outlives irqfd_ (its handler)
  std::unique_ptr<WhpTriggerIrqFd> irqfd_;
};

}  // namespace virt::whp::test
