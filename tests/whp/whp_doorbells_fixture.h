// WhpDoorbellsTest: a WHP partition on FakeWhp with its Doorbells, shared by the doorbell suites.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "mock_whp_api.h"
#include "virt/kernel_doorbells.h"
#include "virt/whp/whp_hypervisor.h"
#include "whp_doorbells.h"

namespace virt::whp::test {

class WhpDoorbellsTest : public testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(PartitionConfig config = {.vcpu_count = 1, .irqchip = true}) {
    partition_.reset();
    auto h = WhpHypervisor::Create(fake_.api());
    ASSERT_TRUE(h.has_value()) << h.error().Message();
    hypervisor_ = std::move(*h);
    auto p = hypervisor_->CreatePartition(config);
    ASSERT_TRUE(p.has_value()) << p.error().Message();
    partition_ = std::move(*p);
    ASSERT_EQ(fake_.live_partitions().size(), 1u);
    handle_ = *fake_.live_partitions().begin();
    doorbells_ = partition_->doorbells();
  }

  // The registrations alive in the shared table.
  size_t TableSize() const {
    auto* kernel = dynamic_cast<KernelDoorbells*>(doorbells_);
    EXPECT_NE(kernel, nullptr);
    return kernel != nullptr ? kernel->size() : 0;
  }

  size_t Calls() const { return fake_.doorbell_calls().size(); }

  FakeWhp fake_;
  std::unique_ptr<WhpHypervisor> hypervisor_;
  std::unique_ptr<Partition> partition_;
  WHV_PARTITION_HANDLE handle_ = nullptr;
  Doorbells* doorbells_ = nullptr;
};

// The 32-bit word after Length (MatchOnValue bit 0, MatchOnLength bit 1, Reserved above), read
// from the bytes WHP receives.
inline uint32_t FlagsWord(const WHV_DOORBELL_MATCH_DATA& m) {
  static_assert(sizeof m == 24);
  uint32_t word = 0;
  std::memcpy(&word, reinterpret_cast<const uint8_t*>(&m) + 20, sizeof word);
  return word;
}

inline int64_t NativeOf(int32_t hr) { return static_cast<int64_t>(static_cast<uint32_t>(hr)); }

}  // namespace virt::whp::test
