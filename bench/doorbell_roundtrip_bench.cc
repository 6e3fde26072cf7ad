// doorbell_roundtrip: guest doorbell -> device thread -> irqfd MSI -> guest, raw vs library, and
// the same round trip against a plain PIO exit answered by the VMM with RequestMsi.
//
// Both rows are paired (paired.h): each pair is a batch of kBatch round trips on each
// side, back to back in one process, on set-ups made once per repetition (doorbell_loops.h).
//   doorbell_roundtrip    raw KVM_IOEVENTFD + KVM_IRQFD with epoll/read/write  /  the library's
//                         Doorbells + IrqFdRoute with its Poller. Goal <= 1.03.
//   doorbell_vs_pio_exit  the PIO exit path (the vCPU thread takes each ring as an exit and
//                         calls Partition::RequestMsi)  /  the library doorbell path. Reported,
//                         no goal: below 1 means the doorbell is the faster one.
#include <benchmark/benchmark.h>

#include "paired.h"
#include "bench_common.h"
#include "doorbell_loops.h"
#include "report.h"

namespace virt_bench {
namespace {

constexpr uint32_t kBatch = 16;  // round trips per side per pair
constexpr int kPairs = 100;      // pairs per repetition

void DoorbellRoundtrip(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  virt::Hypervisor* hv = system ? LibraryHypervisor(state) : nullptr;
  if (hv == nullptr) return;
  auto raw_loop = RawDoorbellLoop::Start(*system);
  if (!raw_loop) return Fail(state, "raw doorbell loop", raw_loop.error());
  auto lib_loop = LibraryDoorbellLoop::Start(*hv);
  if (!lib_loop) return Fail(state, "library doorbell loop", lib_loop.error());
  RunPaired(
      state, "doorbell_roundtrip", {.batch = kBatch},
      [&](uint32_t n) { return (*raw_loop)->Batch(n); },
      [&](uint32_t n) { return (*lib_loop)->Batch(n); });
  if (auto r = (*raw_loop)->Stop(); !r) return Fail(state, "raw stop", r.error());
  if (auto r = (*lib_loop)->Stop(); !r) return Fail(state, "library stop", r.error());
}

void DoorbellVsPioExit(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  auto pio_loop = PioExitLoop::Start(*hv);
  if (!pio_loop) return Fail(state, "PIO exit loop", pio_loop.error());
  auto lib_loop = LibraryDoorbellLoop::Start(*hv);
  if (!lib_loop) return Fail(state, "library doorbell loop", lib_loop.error());
  RunPaired(
      state, "doorbell_vs_pio_exit", {.batch = kBatch},
      [&](uint32_t n) { return (*pio_loop)->Batch(n); },
      [&](uint32_t n) { return (*lib_loop)->Batch(n); });
  if (auto r = (*lib_loop)->Stop(); !r) return Fail(state, "library stop", r.error());
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("doorbell_roundtrip/paired", DoorbellRoundtrip)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("doorbell_vs_pio_exit/paired", DoorbellVsPioExit)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"doorbell_roundtrip", "", "doorbell_roundtrip/paired", Goal::RatioAtMost(1.03),
                 true});
  AddComparison({"doorbell_vs_pio_exit", "", "doorbell_vs_pio_exit/paired", Goal::None(), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
