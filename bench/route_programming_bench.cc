// route_programming: N MSI routes created and armed: raw floor vs library batched vs per change.
//
// Work per route, on every side: create the eventfd, give it a GSI, put its MSI entry in the
// routing table, arm it with KVM_IRQFD. The raw floor does it with N eventfds, one
// KVM_SET_GSI_ROUTING and N assigns. The library does IrqFd::NewRoute + IrqFdRoute::SetMsi per
// route, either inside one RouteBatch (one table push) or without one (a push per SetMsi: the
// table grows by one entry each time, so the total is O(N^2) — what the batch exists to avoid).
//
// Each iteration starts from a fresh VM / partition and ends by tearing it and its routes down;
// only the programming is timed. Both rows are paired (RunPaired): raw and batched, then
// batched and per change, alternate in batches of a few iterations in one process.
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_common.h"
#include "paired.h"
#include "raw_kvm.h"
#include "report.h"
#include "virt/irqfd.h"
#include "virt/partition.h"

namespace virt_bench {
namespace {

constexpr int64_t kSizes[] = {64, 256, 1024, 2048};
constexpr int64_t kLargest = 2048;

// `iterations` times: a fresh VM, then (timed) N raw routes, then its teardown.
BatchTime RawRoutes(const raw::System& system, uint32_t n, uint32_t iterations) {
  Stopwatch watch;
  std::vector<raw::Fd> events;
  events.reserve(n);
  for (uint32_t i = 0; i < iterations; ++i) {
    auto vm = raw::CreateVm(system);
    if (!vm) return std::unexpected("raw VM: " + vm.error());
    watch.Start();
    auto programmed = ProgramRawRoutes(vm->get(), n, events);
    watch.Stop();
    if (!programmed) return std::unexpected("raw routes: " + programmed.error());
    vm->Reset();  // closing the VM fd first releases every irqfd at once
    events.clear();
  }
  return watch.total_ns();
}

// `iterations` times: a fresh partition, then (timed) N library routes, then its teardown.
BatchTime LibraryRoutes(virt::Hypervisor& hv, uint32_t n, bool batched, uint32_t iterations,
                        double& pushes) {
  Stopwatch watch;
  std::vector<std::unique_ptr<virt::IrqFdRoute>> routes;
  routes.reserve(n);
  for (uint32_t i = 0; i < iterations; ++i) {
    auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!partition) return std::unexpected("CreatePartition: " + partition.error().Message());
    virt::IrqFd* irqfd = (*partition)->irqfd();
    if (irqfd == nullptr) return std::unexpected("Partition::irqfd: the partition has no irqfd");
    const uint64_t pushes_before = irqfd->push_count();
    watch.Start();
    virt::Status s = ProgramLibraryRoutes(*irqfd, n, batched, routes);
    watch.Stop();
    if (!s) {
      return std::unexpected(std::string(batched ? "batched" : "per-change") +
                             " routes: " + s.error().Message());
    }
    pushes = static_cast<double>(irqfd->push_count() - pushes_before);
    partition->reset();  // destroying the partition first: no per-route deassign
    routes.clear();
  }
  return watch.total_ns();
}

// route_programming/N: the raw floor against the batched library path.
void RawVsBatched(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  double pushes = 0;
  RunPaired(state, "route_programming/" + std::to_string(n), {.batch = 2, .warm_up = true},
            [&](uint32_t k) { return RawRoutes(*system, n, k); },
            [&](uint32_t k) { return LibraryRoutes(*hv, n, true, k, pushes); });
  state.counters["routes"] = n;
  state.counters["table_pushes"] = pushes;
}

// route_programming_per_change/N: the batched library path against one push per change.
void BatchedVsPerChange(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  double batched_pushes = 0, pushes = 0;
  // ~0.4 s per per-change iteration at 2048 routes on a nested host: no warm-up, one each.
  RunPaired(state, "route_programming_per_change/" + std::to_string(n),
            {.batch = 1, .warm_up = false},
            [&](uint32_t k) { return LibraryRoutes(*hv, n, true, k, batched_pushes); },
            [&](uint32_t k) { return LibraryRoutes(*hv, n, false, k, pushes); });
  state.counters["routes"] = n;
  state.counters["table_pushes"] = pushes;
}

void Sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : kSizes) b->Arg(n);
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("route_programming/paired", RawVsBatched)
      ->Apply(Sizes)
      ->Iterations(5)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("route_programming_per_change/paired", BatchedVsPerChange)
      ->Apply(Sizes)
      ->Iterations(3)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);

  for (int64_t n : kSizes) {
    const std::string size = std::to_string(n);
    AddComparison({"route_programming/" + size, "", "route_programming/paired/" + size,
                   n == kLargest ? Goal::RatioAtMost(1.03) : Goal::None(), true});
  }
  // Baseline: the library's batched path; the ratio is how much slower one push per change is.
  for (int64_t n : kSizes) {
    const std::string size = std::to_string(n);
    AddComparison({"route_programming_per_change/" + size, "",
                   "route_programming_per_change/paired/" + size,
                   n == kLargest ? Goal::RatioAtLeast(100) : Goal::None(), true});
  }
  return true;
}();

}  // namespace
}  // namespace virt_bench
