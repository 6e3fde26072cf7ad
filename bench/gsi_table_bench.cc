// gsi_table: GsiTable allocate/free cost per operation over 2048 slots (library only, no KVM).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "report.h"
#include "virt/gsi_table.h"

namespace virt_bench {
namespace {

constexpr uint32_t kSlots = 2048;

// A fixed permutation of [0, n): frees happen in this order so the free stack is exercised in a
// scattered order, not just replayed backwards.
std::vector<uint32_t> Shuffled(uint32_t n) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 rng(20240611);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

// Each iteration allocates all 2048 GSIs, then frees them all in a shuffled order: 4096 ops.
void GsiTableCycle(benchmark::State& state) {
  auto table = virt::GsiTable::Create(kSlots);
  if (!table) {
    state.SkipWithError(table.error().Message().c_str());
    return;
  }
  const std::vector<uint32_t> order = Shuffled(kSlots);
  std::vector<virt::Gsi> held(kSlots);
  bool ok = true;
  for (auto _ : state) {
    for (uint32_t i = 0; i < kSlots; ++i) {
      auto gsi = table->Allocate();
      ok &= gsi.has_value();
      held[i] = gsi.value_or(0);
    }
    for (uint32_t i = 0; i < kSlots; ++i) ok &= table->Free(held[order[i]]).has_value();
    benchmark::DoNotOptimize(held.data());
    if (!ok) {
      state.SkipWithError("GsiTable::Allocate/Free failed during a full cycle");
      break;
    }
  }
  state.counters["ops_per_iteration"] = 2.0 * kSlots;
  state.SetItemsProcessed(state.iterations() * 2 * kSlots);
}

// The table held at 2047 of 2048 GSIs; each iteration frees 64 scattered GSIs and allocates one
// back after each free: 128 ops at full occupancy, where a scanning allocator would be slowest.
void GsiTableFullChurn(benchmark::State& state) {
  constexpr uint32_t kHeld = kSlots - 1;
  constexpr uint32_t kPairsPerIteration = 64;
  auto table = virt::GsiTable::Create(kSlots);
  if (!table) {
    state.SkipWithError(table.error().Message().c_str());
    return;
  }
  std::vector<virt::Gsi> held(kHeld);
  for (uint32_t i = 0; i < kHeld; ++i) {
    auto gsi = table->Allocate();
    if (!gsi) {
      state.SkipWithError(gsi.error().Message().c_str());
      return;
    }
    held[i] = *gsi;
  }
  const std::vector<uint32_t> order = Shuffled(kHeld);
  size_t next = 0;
  bool ok = true;
  for (auto _ : state) {
    for (uint32_t p = 0; p < kPairsPerIteration; ++p) {
      const uint32_t slot = order[next];
      next = next + 1 == order.size() ? 0 : next + 1;
      ok &= table->Free(held[slot]).has_value();
      auto gsi = table->Allocate();
      ok &= gsi.has_value();
      held[slot] = gsi.value_or(0);
    }
    benchmark::DoNotOptimize(held.data());
    if (!ok) {
      state.SkipWithError("GsiTable::Allocate/Free failed at full occupancy");
      break;
    }
  }
  state.counters["ops_per_iteration"] = 2.0 * kPairsPerIteration;
  state.SetItemsProcessed(state.iterations() * 2 * kPairsPerIteration);
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("gsi_table/virt", GsiTableCycle)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("gsi_table_full_churn/virt", GsiTableFullChurn)
      ->Unit(benchmark::kNanosecond);
  AddComparison({"gsi_table", "", "gsi_table/virt", Goal::VirtNsBelow(20)});
  AddComparison({"gsi_table_full_churn", "", "gsi_table_full_churn/virt", Goal::VirtNsBelow(20)});
  return true;
}();

}  // namespace
}  // namespace virt_bench
