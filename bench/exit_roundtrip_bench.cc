// exit_roundtrip: one guest PIO exit and re-entry per iteration, raw KVM_RUN vs Vcpu::Run, paired.
//
// Two test guests in kModeOutLoop, one in a raw VM and one in a library partition, execute
// `out %al, $kLoopPort` forever, so each iteration is exactly one guest entry, one OUT exit and
// the host's look at it. Both sides check that the exit is an OUT to kLoopPort and read its
// byte (what any VMM does with a PIO exit); the library side additionally decodes it into a
// VcpuExit and runs the Vcpu's cancel protocol, which is the cost being measured. The two
// guests run alternately in batches (RunPaired), one report pair per batch of each.
#include <benchmark/benchmark.h>

#include <string>
#include <variant>

#include "bench_common.h"
#include "guest_driver.h"
#include "paired.h"
#include "raw_kvm.h"
#include "report.h"
#include "test_guest.h"

namespace virt_bench {
namespace {

using virt::guest::kLoopPort;
using virt::guest::kModeOutLoop;

constexpr const char* kRow = "exit_roundtrip";
constexpr uint32_t kBatch = 100;  // ~1 ms of exits per side on the reference host
constexpr int64_t kPairs = 100;   // per repetition

void ExitRoundtrip(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;

  auto vm = raw::CreateVm(*system);
  if (!vm) return Fail(state, "raw VM", vm.error());
  auto guest = raw::Guest::Create(*system, vm->get());
  if (!guest) return Fail(state, "raw guest", guest.error());
  if (auto r = guest->RunToEvent(kModeOutLoop); !r) return Fail(state, "raw start-up", r.error());
  if (!guest->OutValue(kLoopPort)) {
    return Fail(state, "raw start-up", "expected the loop OUT, got " + guest->ExitText());
  }

  auto partition = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Fail(state, "CreatePartition", partition.error());
  auto driver = virt::guest::GuestDriver::Create(**partition, kModeOutLoop, 0);
  if (!driver) return Fail(state, "GuestDriver::Create", driver.error());
  auto first = (*driver)->RunToEvent();
  if (!first) return Fail(state, "start-up", first.error());
  const auto* start = std::get_if<virt::IoExit>(&*first);
  if (start == nullptr || !start->is_write || start->port != kLoopPort) {
    return Fail(state, "start-up", "expected the loop OUT, got " + virt::guest::Describe(*first));
  }
  virt::Vcpu& vcpu = (*driver)->vcpu();

  auto raw_side = [&](uint32_t n) {
    return TimeLoop(n, [&](std::string& why) {
      if (auto r = guest->Run(); !r) {
        why = "raw loop: " + r.error();
        return false;
      }
      const std::optional<uint32_t> value = guest->OutValue(kLoopPort);
      if (!value) {
        why = "raw loop: expected the loop OUT, got " + guest->ExitText();
        return false;
      }
      benchmark::DoNotOptimize(*value);
      return true;
    });
  };
  auto virt_side = [&](uint32_t n) {
    return TimeLoop(n, [&](std::string& why) {
      auto exit = vcpu.Run();
      if (!exit) {
        why = "Vcpu::Run: " + exit.error().Message();
        return false;
      }
      const auto* io = std::get_if<virt::IoExit>(&*exit);
      if (io == nullptr || !io->is_write || io->port != kLoopPort) {
        why = "loop: expected the loop OUT, got " + virt::guest::Describe(*exit);
        return false;
      }
      benchmark::DoNotOptimize(io->value());
      return true;
    });
  };
  RunPaired(state, kRow, {.batch = kBatch}, raw_side, virt_side);
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("exit_roundtrip/paired", ExitRoundtrip)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({kRow, "", "exit_roundtrip/paired", Goal::RatioAtMost(1.01), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
