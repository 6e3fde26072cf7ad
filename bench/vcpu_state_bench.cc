// vcpu_state_save_restore: one vCPU's whole state saved and restored, raw ioctls vs the library.
//
// Paired (paired.h): each side of a pair saves and restores the state kBatch times on a
// vCPU stopped at an exit of the kModeOutLoop guest (set up once per repetition). The library
// side is VcpuStateControl::SaveStateInto(kept) (every supported part, into one VcpuState kept
// across saves, as a migration loop keeps one per vCPU) then RestoreState(kept,
// RestoreMode::kStopOnFailure), which makes exactly the hypervisor's calls with no rollback
// save; the raw side makes the same ioctl sequence into buffers allocated once
// (raw_vcpu_state.h). Goal <= 1.05.
#include <benchmark/benchmark.h>

#include <chrono>
#include <optional>
#include <variant>

#include "paired.h"
#include "bench_common.h"
#include "guest_driver.h"
#include "raw_kvm.h"
#include "raw_vcpu_state.h"
#include "report.h"
#include "test_guest.h"
#include "virt/vcpu_state_control.h"

namespace virt_bench {
namespace {

using virt::guest::kLoopPort;
using virt::guest::kModeOutLoop;

constexpr uint32_t kBatch = 2;  // save + restores per side per pair
constexpr int kPairs = 150;

std::expected<double, std::string> RawBatch(raw::VcpuStateBuffers& buffers, int vcpu_fd,
                                            uint32_t n) {
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    if (auto r = buffers.Save(vcpu_fd); !r) return std::unexpected("raw save: " + r.error());
    if (auto r = buffers.Restore(vcpu_fd); !r) return std::unexpected("raw restore: " + r.error());
  }
  return NsSince(start);
}

std::expected<double, std::string> LibraryBatch(virt::VcpuStateControl& control,
                                                virt::VcpuState& kept, uint32_t n) {
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    if (virt::Status s = control.SaveStateInto(kept); !s) {
      return std::unexpected("SaveStateInto: " + s.error().Message());
    }
    if (virt::Status s = control.RestoreState(kept, virt::RestoreMode::kStopOnFailure); !s) {
      return std::unexpected("RestoreState: " + s.error().Message());
    }
  }
  return NsSince(start);
}

void VcpuStateSaveRestore(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  virt::Hypervisor* hv = system ? LibraryHypervisor(state) : nullptr;
  if (hv == nullptr) return;

  auto vm = raw::CreateVm(*system);
  if (!vm) return Fail(state, "raw VM", vm.error());
  auto guest = raw::Guest::Create(*system, vm->get());
  if (!guest) return Fail(state, "raw guest", guest.error());
  if (auto r = guest->RunToEvent(kModeOutLoop); !r) return Fail(state, "raw start-up", r.error());
  if (!guest->OutValue(kLoopPort)) {
    return Fail(state, "raw start-up", "expected the loop OUT, got " + guest->ExitText());
  }
  auto layout = raw::VcpuStateLayout::Probe(*system, vm->get(), guest->vcpu_fd());
  if (!layout) return Fail(state, "raw state layout", layout.error());
  raw::VcpuStateBuffers buffers(*layout);

  auto partition = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Fail(state, "CreatePartition", partition.error());
  auto driver = virt::guest::GuestDriver::Create(**partition, kModeOutLoop, 0);
  if (!driver) return Fail(state, "GuestDriver::Create", driver.error());
  auto first = (*driver)->RunToEvent();
  if (!first) return Fail(state, "start-up", first.error());
  const auto* io = std::get_if<virt::IoExit>(&*first);
  if (io == nullptr || io->port != kLoopPort) {
    return Fail(state, "start-up", "expected the loop OUT, got " + virt::guest::Describe(*first));
  }
  virt::VcpuStateControl* control = (*driver)->vcpu().state();
  if (control == nullptr) return Fail(state, "Vcpu::state", "no state control");
  virt::VcpuState kept;  // reused by every save, as the raw side reuses its buffers
  state.counters["msrs"] = static_cast<double>(layout->msrs.size());
  state.counters["xsave_bytes"] = layout->xsave2_size ? layout->xsave2_size : 4096;

  RunPaired(
      state, "vcpu_state_save_restore", {.batch = kBatch},
      [&](uint32_t n) { return RawBatch(buffers, guest->vcpu_fd(), n); },
      [&](uint32_t n) { return LibraryBatch(*control, kept, n); });
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("vcpu_state_save_restore/paired", VcpuStateSaveRestore)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"vcpu_state_save_restore", "", "vcpu_state_save_restore/paired",
                 Goal::RatioAtMost(1.05), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
