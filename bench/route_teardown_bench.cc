// route_teardown: tearing down a VM holding 2048 armed routes: raw vs library vs per-route.
//
// Set-up (paused): a fresh VM / partition with 2048 MSI routes programmed and armed (one table
// push, 2048 KVM_IRQFD assigns). Timed: the teardown.
//  - raw: close the VM fd (KVM drops every irqfd in one go), then close the 2048 eventfds;
//  - virt: destroy the partition, then the 2048 routes (each just closes its event: the
//    partition is gone, so no route touches the VM any more);
//  - virt_per_route: what a naive teardown pays: the routes are destroyed first, while the
//    partition is alive, so each one does KVM_IRQFD deassign (an SRCU grace period each); they
//    are released inside one RouteBatch, so the routing table is still pushed only once; then
//    the partition is destroyed.
// VM teardown is slow and noisy on a nested host; the report takes the median of the
// repetitions. Iteration counts are fixed for the same reason as route_programming.
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

constexpr uint32_t kRoutes = 2048;

void RouteTeardownRaw(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  std::optional<raw::Fd> vm;
  std::vector<raw::Fd> events;
  events.reserve(kRoutes);

  for (auto _ : state) {
    state.PauseTiming();
    auto fresh = raw::CreateVm(*system);
    if (!fresh) {
      Fail(state, "raw VM", fresh.error());
      break;
    }
    vm = std::move(*fresh);
    if (auto r = ProgramRawRoutes(vm->get(), kRoutes, events); !r) {
      Fail(state, "raw routes", r.error());
      break;
    }
    state.ResumeTiming();

    vm.reset();
    events.clear();
  }
  vm.reset();
  events.clear();
  state.counters["routes"] = kRoutes;
}

void RouteTeardownVirt(benchmark::State& state, bool per_route) {
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  std::unique_ptr<virt::Partition> partition;
  std::vector<std::unique_ptr<virt::IrqFdRoute>> routes;
  routes.reserve(kRoutes);
  // Teardown failures of routes land here instead of stderr; the first one fails the run.
  std::optional<virt::Error> teardown_error;

  for (auto _ : state) {
    state.PauseTiming();
    auto fresh = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!fresh) {
      Fail(state, "CreatePartition", fresh.error());
      break;
    }
    partition = std::move(*fresh);
    virt::IrqFd* irqfd = partition->irqfd();
    if (irqfd == nullptr) {
      Fail(state, "Partition::irqfd", "the partition has no irqfd");
      break;
    }
    irqfd->SetErrorHandler([&](const virt::Error& e) {
      if (!teardown_error) teardown_error = e;
    });
    if (virt::Status s = ProgramLibraryRoutes(*irqfd, kRoutes, /*batched=*/true, routes); !s) {
      Fail(state, "routes", s.error());
      break;
    }
    state.ResumeTiming();

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

    if (teardown_error) {
      Fail(state, "route teardown", *teardown_error);
      break;
    }
  }
  partition.reset();
  routes.clear();
  state.counters["routes"] = kRoutes;
}

void RouteTeardownLibrary(benchmark::State& state) { RouteTeardownVirt(state, false); }
void RouteTeardownPerRoute(benchmark::State& state) { RouteTeardownVirt(state, true); }

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("route_teardown/raw", RouteTeardownRaw)
      ->Iterations(5)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("route_teardown/virt", RouteTeardownLibrary)
      ->Iterations(5)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("route_teardown/virt_per_route", RouteTeardownPerRoute)
      ->Iterations(5)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  AddComparison({"route_teardown", "route_teardown/raw", "route_teardown/virt",
                 Goal::RatioAtMost(1.2)});
  // Baseline: the raw floor; the ratio is what per-route deassign costs on top of it.
  AddComparison({"route_teardown_per_route", "route_teardown/raw", "route_teardown/virt_per_route",
                 Goal::None()});
  return true;
}();

}  // namespace
}  // namespace virt_bench
