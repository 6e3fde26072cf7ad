// exit_roundtrip: one guest PIO exit and re-entry per iteration, raw KVM_RUN vs Vcpu::Run.
//
// The test guest in kModeOutLoop executes `out %al, $kLoopPort` forever, so each iteration is
// exactly one guest entry, one OUT exit and the host's look at it. Both sides check that the
// exit is an OUT to kLoopPort and read its byte (what any VMM does with a PIO exit); the library
// side additionally decodes it into a VcpuExit and takes the Vcpu's cancel lock, which is the
// cost being measured.
#include <benchmark/benchmark.h>

#include <string>
#include <variant>

#include "bench_common.h"
#include "guest_driver.h"
#include "raw_kvm.h"
#include "report.h"
#include "test_guest.h"

namespace virt_bench {
namespace {

using virt::guest::kLoopPort;
using virt::guest::kModeOutLoop;

void ExitRoundtripRaw(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  auto vm = raw::CreateVm(*system);
  if (!vm) return Fail(state, "raw VM", vm.error());
  auto guest = raw::Guest::Create(*system, vm->get());
  if (!guest) return Fail(state, "raw guest", guest.error());
  if (auto r = guest->RunToEvent(kModeOutLoop); !r) return Fail(state, "raw start-up", r.error());
  if (!guest->OutValue(kLoopPort)) {
    return Fail(state, "raw start-up", "expected the loop OUT, got " + guest->ExitText());
  }

  for (auto _ : state) {
    if (auto r = guest->Run(); !r) {
      Fail(state, "raw loop", r.error());
      break;
    }
    const std::optional<uint32_t> value = guest->OutValue(kLoopPort);
    if (!value) {
      Fail(state, "raw loop", "expected the loop OUT, got " + guest->ExitText());
      break;
    }
    benchmark::DoNotOptimize(*value);
  }
  state.SetItemsProcessed(state.iterations());
}

void ExitRoundtripVirt(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  auto partition = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Fail(state, "CreatePartition", partition.error());
  auto driver = virt::guest::GuestDriver::Create(**partition, kModeOutLoop, 0);
  if (!driver) return Fail(state, "GuestDriver::Create", driver.error());
  auto first = (*driver)->RunToEvent();
  if (!first) return Fail(state, "start-up", first.error());
  const auto* io = std::get_if<virt::IoExit>(&*first);
  if (io == nullptr || !io->is_write || io->port != kLoopPort) {
    return Fail(state, "start-up", "expected the loop OUT, got " + virt::guest::Describe(*first));
  }
  virt::Vcpu& vcpu = (*driver)->vcpu();

  for (auto _ : state) {
    auto exit = vcpu.Run();
    if (!exit) {
      Fail(state, "Vcpu::Run", exit.error());
      break;
    }
    io = std::get_if<virt::IoExit>(&*exit);
    if (io == nullptr || !io->is_write || io->port != kLoopPort) {
      Fail(state, "loop", "expected the loop OUT, got " + virt::guest::Describe(*exit));
      break;
    }
    benchmark::DoNotOptimize(io->value());
  }
  state.SetItemsProcessed(state.iterations());
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("exit_roundtrip/raw", ExitRoundtripRaw)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("exit_roundtrip/virt", ExitRoundtripVirt)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"exit_roundtrip", "exit_roundtrip/raw", "exit_roundtrip/virt",
                 Goal::RatioAtMost(1.03)});
  return true;
}();

}  // namespace
}  // namespace virt_bench
