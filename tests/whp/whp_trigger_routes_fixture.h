// TriggerRoutesHost: a FakeWhp with a trigger-backed WHP partition, for the suites that save
// trigger routes from one partition and restore them into a fresh one (issue 12).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mock_whp_api.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_irqfd_fixture.h"

namespace virt::whp::test {

// A logical-destination, lowest-priority, level-triggered MSI: destination 0x5a, vector 0xec.
inline constexpr MsiMessage kMsiLogicalLevel{0xFEE00000u | (0x5au << 12) | (1u << 2),
                                             (1u << 15) | (1u << 14) | (1u << 8) | 0xec};

// One host: its own FakeWhp (own handles, triggers, log) with a one-vCPU irqchip partition whose
// IrqFd is a WhpTriggerIrqFd. Error reports of that IrqFd are collected.
class TriggerRoutesHost {
 public:
  TriggerRoutesHost() {
    auto h = WhpHypervisor::Create(fake_.api(), {.use_triggers = true});
    EXPECT_TRUE(h.has_value()) << h.error().Message();
    if (!h) return;
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = true});
    EXPECT_TRUE(p.has_value()) << p.error().Message();
    if (!p) return;
    partition_ = std::move(*p);
    irqfd().SetErrorHandler([this](const Error& error) {
      std::lock_guard lock(mu_);
      reports_.push_back(error.Message());
    });
    fake_.ClearLog();
  }

  bool ok() const { return partition_ != nullptr; }
  FakeWhp& fake() { return fake_; }
  Partition& partition() { return *partition_; }
  IrqFd& irqfd() { return *partition_->irqfd(); }
  PartitionStateControl& state() { return *partition_->state(); }
  // Drops the partition (Shutdown, WHvDeletePartition) and with it the IrqFd's shared state
  // once no route holds it.
  void DestroyPartition() { partition_.reset(); }

  // The error reports so far (messages), clearing them.
  std::vector<std::string> TakeReports() {
    std::lock_guard lock(mu_);
    return std::exchange(reports_, {});
  }

  // The live routes (an empty list when Routes fails, with a test failure).
  std::vector<RouteState> Routes() {
    auto routes = irqfd().Routes();
    EXPECT_TRUE(routes.has_value()) << routes.error().Message();
    return routes ? *routes : std::vector<RouteState>{};
  }

  // The parameters of every live trigger.
  std::vector<WHV_TRIGGER_PARAMETERS> TriggerParameters() const {
    std::vector<WHV_TRIGGER_PARAMETERS> out;
    for (const auto& [handle, trigger] : fake_.triggers()) out.push_back(trigger.parameters);
    return out;
  }

 private:
  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  std::mutex mu_;
  std::vector<std::string> reports_;  // guarded by mu_
};

// Whether some live trigger of `host` delivers `msi` (trigger type interrupt, its exact control).
inline bool HasTriggerFor(const TriggerRoutesHost& host, const MsiMessage& msi) {
  for (const WHV_TRIGGER_PARAMETERS& p : host.TriggerParameters()) {
    if (static_cast<int>(p.TriggerType) == 0 && SameControl(p.Interrupt, ControlOf(msi))) {
      return true;
    }
  }
  return false;
}

}  // namespace virt::whp::test
