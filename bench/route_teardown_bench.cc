// route_teardown: tearing down a VM holding 2048 armed routes: raw vs library vs per-route.
//
// Set-up (untimed): a fresh VM / partition with 2048 MSI routes programmed and armed (one table
// push, 2048 KVM_IRQFD assigns). Timed: the teardown.
//  - raw: close the VM fd (KVM drops every irqfd in one go), then close the 2048 eventfds;
//  - virt: destroy the partition, then the 2048 routes (each just closes its event: the
//    partition is gone, so no route touches the VM any more);
//  - virt_per_route: what a naive teardown pays: the routes are destroyed first, while the
//    partition is alive, so each one does KVM_IRQFD deassign (an SRCU grace period each); they
//    are released inside one RouteBatch, so the routing table is still pushed only once; then
//    the partition is destroyed.
// Both rows are paired against the raw teardown (RunPaired): one teardown of each side per
// pair, alternating in one process, so the host's drift between pairs cancels in each ratio.
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

constexpr uint32_t kRoutes = 2048;
constexpr int64_t kPairs = 4;  // per repetition

BatchTime RawTeardown(const raw::System& system, uint32_t iterations) {
  Stopwatch watch;
  std::vector<raw::Fd> events;
  events.reserve(kRoutes);
  for (uint32_t i = 0; i < iterations; ++i) {
    auto vm = raw::CreateVm(system);
    if (!vm) return std::unexpected("raw VM: " + vm.error());
    if (auto r = ProgramRawRoutes(vm->get(), kRoutes, events); !r) {
      return std::unexpected("raw routes: " + r.error());
    }
    watch.Start();
    vm->Reset();
    events.clear();
    watch.Stop();
  }
  return watch.total_ns();
}

BatchTime LibraryTeardown(virt::Hypervisor& hv, bool per_route, uint32_t iterations) {
  Stopwatch watch;
  std::vector<std::unique_ptr<virt::IrqFdRoute>> routes;
  routes.reserve(kRoutes);
  // Teardown failures of routes land here instead of stderr; the first one fails the run.
  std::optional<virt::Error> teardown_error;
  for (uint32_t i = 0; i < iterations; ++i) {
    auto fresh = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!fresh) return std::unexpected("CreatePartition: " + fresh.error().Message());
    std::unique_ptr<virt::Partition> partition = std::move(*fresh);
    virt::IrqFd* irqfd = partition->irqfd();
    if (irqfd == nullptr) return std::unexpected("Partition::irqfd: the partition has no irqfd");
    irqfd->SetErrorHandler([&](const virt::Error& e) {
      if (!teardown_error) teardown_error = e;
    });
    if (virt::Status s = ProgramLibraryRoutes(*irqfd, kRoutes, /*batched=*/true, routes); !s) {
      return std::unexpected("routes: " + s.error().Message());
    }
    watch.Start();
    if (per_route) {
      {
        virt::RouteBatch batch(*irqfd);
        routes.clear();  // KVM_IRQFD deassign per route, entries removed in memory
      }                  // one push of the emptied table
      partition.reset();
    } else {
      partition.reset();
      routes.clear();
    }
    watch.Stop();
    if (teardown_error) return std::unexpected("route teardown: " + teardown_error->Message());
  }
  return watch.total_ns();
}

void RouteTeardown(benchmark::State& state, const char* row, bool per_route) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  RunPaired(state, row, {.batch = 1, .warm_up = true},
            [&](uint32_t k) { return RawTeardown(*system, k); },
            [&](uint32_t k) { return LibraryTeardown(*hv, per_route, k); });
  state.counters["routes"] = kRoutes;
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("route_teardown/paired", [](benchmark::State& s) {
    RouteTeardown(s, "route_teardown", false);
  })->Iterations(kPairs)->UseManualTime()->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("route_teardown/per_route_paired", [](benchmark::State& s) {
    RouteTeardown(s, "route_teardown_per_route", true);
  })->Iterations(kPairs)->UseManualTime()->Unit(benchmark::kMillisecond);
  AddComparison({"route_teardown", "", "route_teardown/paired", Goal::RatioAtMost(1.05), true});
  // Baseline: the raw floor; the ratio is what per-route deassign costs on top of it.
  AddComparison({"route_teardown_per_route", "", "route_teardown/per_route_paired", Goal::None(),
                 true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
