// route_programming: N MSI routes created and armed: raw floor vs library batched vs per change.
//
// Work per route, on every side: create the eventfd, give it a GSI, put its MSI entry in the
// routing table, arm it with KVM_IRQFD. The raw floor does it with N eventfds, one
// KVM_SET_GSI_ROUTING and N assigns. The library does IrqFd::NewRoute + IrqFdRoute::SetMsi per
// route, either inside one RouteBatch (one table push) or without one (a push per SetMsi: the
// table grows by one entry each time, so the total is O(N^2) — what the batch exists to avoid).
//
// Each iteration starts from a fresh VM / partition created with the timer paused, and the
// previous iteration's VM and routes are torn down paused too, so only programming is timed.
// Iteration counts are fixed: the paused set-up and teardown (tens of ms per iteration on a
// nested host) would otherwise dominate the run time.
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>
#include <vector>

#include "bench_common.h"
#include "raw_kvm.h"
#include "report.h"
#include "virt/irqfd.h"
#include "virt/partition.h"

namespace virt_bench {
namespace {

constexpr int64_t kSizes[] = {64, 256, 1024, 2048};
constexpr int64_t kLargest = 2048;

void RouteProgrammingRaw(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  std::optional<raw::Fd> vm;
  std::vector<raw::Fd> events;
  events.reserve(n);

  for (auto _ : state) {
    state.PauseTiming();
    vm.reset();  // closing the VM fd first releases every irqfd at once
    events.clear();
    auto fresh = raw::CreateVm(*system);
    if (!fresh) {
      Fail(state, "raw VM", fresh.error());
      break;
    }
    vm = std::move(*fresh);
    state.ResumeTiming();

    if (auto r = ProgramRawRoutes(vm->get(), n, events); !r) {
      Fail(state, "raw routes", r.error());
      break;
    }
  }
  vm.reset();
  events.clear();
  state.counters["routes"] = n;
  state.counters["table_pushes"] = 1;
  state.SetItemsProcessed(state.iterations() * n);
}

void RouteProgrammingVirt(benchmark::State& state, bool batched) {
  const auto n = static_cast<uint32_t>(state.range(0));
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  std::unique_ptr<virt::Partition> partition;
  std::vector<std::unique_ptr<virt::IrqFdRoute>> routes;
  routes.reserve(n);
  virt::IrqFd* irqfd = nullptr;
  uint64_t pushes_before = 0;
  uint64_t pushes = 0;  // table pushes the last iteration made
  auto tear_down = [&] {
    if (irqfd != nullptr) pushes = irqfd->push_count() - pushes_before;
    irqfd = nullptr;
    partition.reset();  // destroying the partition first: no per-route deassign
    routes.clear();
  };

  for (auto _ : state) {
    state.PauseTiming();
    tear_down();
    auto fresh = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!fresh) {
      Fail(state, "CreatePartition", fresh.error());
      break;
    }
    partition = std::move(*fresh);
    irqfd = partition->irqfd();
    if (irqfd == nullptr) {
      Fail(state, "Partition::irqfd", "the partition has no irqfd");
      break;
    }
    pushes_before = irqfd->push_count();
    state.ResumeTiming();

    if (virt::Status s = ProgramLibraryRoutes(*irqfd, n, batched, routes); !s) {
      Fail(state, batched ? "batched routes" : "per-change routes", s.error());
      break;
    }
  }
  tear_down();
  state.counters["routes"] = n;
  state.counters["table_pushes"] = static_cast<double>(pushes);
  state.SetItemsProcessed(state.iterations() * n);
}

void RouteProgrammingBatched(benchmark::State& state) { RouteProgrammingVirt(state, true); }
void RouteProgrammingPerChange(benchmark::State& state) { RouteProgrammingVirt(state, false); }

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : kSizes) b->Arg(n);
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("route_programming/raw", RouteProgrammingRaw)
      ->Apply(Sizes)
      ->Iterations(10)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("route_programming/virt_batched", RouteProgrammingBatched)
      ->Apply(Sizes)
      ->Iterations(10)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  // ~0.4 s per iteration at 2048 routes on a nested host: fewer iterations.
  benchmark::RegisterBenchmark("route_programming/virt_per_change", RouteProgrammingPerChange)
      ->Apply(Sizes)
      ->Iterations(3)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);

  for (int64_t n : kSizes) {
    const std::string size = std::to_string(n);
    AddComparison({"route_programming/" + size, "route_programming/raw/" + size,
                   "route_programming/virt_batched/" + size,
                   n == kLargest ? Goal::RatioAtMost(1.5) : Goal::None()});
  }
  // Baseline: the library's batched path; the ratio is how much slower one push per change is.
  for (int64_t n : kSizes) {
    const std::string size = std::to_string(n);
    AddComparison({"route_programming_per_change/" + size,
                   "route_programming/virt_batched/" + size,
                   "route_programming/virt_per_change/" + size,
                   n == kLargest ? Goal::RatioAtLeast(50) : Goal::None()});
  }
  return true;
}();

}  // namespace
}  // namespace virt_bench
