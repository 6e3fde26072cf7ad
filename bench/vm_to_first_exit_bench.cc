// vm_to_first_exit: create a VM, map 2 MiB, create a vCPU, run to its first exit: raw vs library.
//
// Timed, per iteration: KVM_CREATE_VM with the irqchip (CreatePartition), 2 MiB of anonymous
// guest memory with the test guest copied in and mapped at guest physical 0, vCPU 0 with its
// kvm_run and CPUID, flat protected-mode registers, and one KVM_RUN to the guest's first exit
// (its first "hello" OUT). /dev/kvm itself is opened once per process on both sides (as a VMM
// opens its hypervisor once). Each iteration's VM is torn down untimed. The row is paired
// (RunPaired): batches of raw and library iterations alternate in one process.
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "bench_common.h"
#include "guest_driver.h"
#include "paired.h"
#include "raw_kvm.h"
#include "report.h"
#include "test_guest.h"
#include "virt/partition.h"

namespace virt_bench {
namespace {

using virt::guest::kHelloPort;
using virt::guest::kModeHalt;

constexpr const char* kRow = "vm_to_first_exit";
constexpr uint32_t kBatch = 2;
constexpr int64_t kPairs = 10;  // per repetition

BatchTime RawToFirstExit(const raw::System& system, uint32_t iterations) {
  Stopwatch watch;
  for (uint32_t i = 0; i < iterations; ++i) {
    std::optional<raw::Fd> vm;
    std::optional<raw::Guest> guest;  // destroyed first: vCPU and memory, then the VM
    watch.Start();
    auto fresh = raw::CreateVm(system);
    if (!fresh) return std::unexpected("raw VM: " + fresh.error());
    vm.emplace(std::move(*fresh));
    auto created = raw::Guest::Create(system, vm->get());
    if (!created) return std::unexpected("raw guest: " + created.error());
    guest.emplace(std::move(*created));
    if (auto r = guest->Run(); !r) return std::unexpected("raw run: " + r.error());
    watch.Stop();
    if (!guest->OutValue(kHelloPort)) {
      return std::unexpected("raw run: expected the first hello OUT, got " + guest->ExitText());
    }
  }
  return watch.total_ns();
}

BatchTime LibraryToFirstExit(virt::Hypervisor& hv, uint32_t iterations) {
  Stopwatch watch;
  for (uint32_t i = 0; i < iterations; ++i) {
    std::unique_ptr<virt::Partition> partition;
    std::unique_ptr<virt::guest::GuestDriver> driver;  // destroyed first, then the partition
    watch.Start();
    auto fresh = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!fresh) return std::unexpected("CreatePartition: " + fresh.error().Message());
    partition = std::move(*fresh);
    // GuestDriver::Create: GuestMemory::Allocate (mmap), guest::Load (memcpy),
    // Partition::MapMemory, Partition::CreateVcpu, guest::Start (Get/SetSpecialRegisters,
    // SetRegisters): the library calls a VMM makes, nothing else.
    auto created = virt::guest::GuestDriver::Create(*partition, kModeHalt, 0);
    if (!created) return std::unexpected("GuestDriver::Create: " + created.error().Message());
    driver = std::move(*created);
    auto exit = driver->vcpu().Run();
    watch.Stop();
    if (!exit) return std::unexpected("Vcpu::Run: " + exit.error().Message());
    const auto* io = std::get_if<virt::IoExit>(&*exit);
    if (io == nullptr || !io->is_write || io->port != kHelloPort) {
      return std::unexpected("Vcpu::Run: expected the first hello OUT, got " +
                             virt::guest::Describe(*exit));
    }
  }
  return watch.total_ns();
}

void VmToFirstExit(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  RunPaired(state, kRow, {.batch = kBatch},
            [&](uint32_t k) { return RawToFirstExit(*system, k); },
            [&](uint32_t k) { return LibraryToFirstExit(*hv, k); });
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("vm_to_first_exit/paired", VmToFirstExit)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  AddComparison({kRow, "", "vm_to_first_exit/paired", Goal::RatioAtMost(1.02), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
