// vm_to_first_exit: create a VM, map 2 MiB, create a vCPU, run to its first exit: raw vs library.
//
// Timed, per iteration: KVM_CREATE_VM with the irqchip (CreatePartition), 2 MiB of anonymous
// guest memory with the test guest copied in and mapped at guest physical 0, vCPU 0 with its
// kvm_run and CPUID, flat protected-mode registers, and one KVM_RUN to the guest's first exit
// (its first "hello" OUT). /dev/kvm itself is opened once per process on both sides (as a VMM
// opens its hypervisor once). The previous iteration's VM is torn down with the timer paused.
#include <benchmark/benchmark.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "bench_common.h"
#include "guest_driver.h"
#include "raw_kvm.h"
#include "report.h"
#include "test_guest.h"
#include "virt/partition.h"

namespace virt_bench {
namespace {

using virt::guest::kHelloPort;
using virt::guest::kModeHalt;

void VmToFirstExitRaw(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  std::optional<raw::Guest> guest;
  std::optional<raw::Fd> vm;

  for (auto _ : state) {
    state.PauseTiming();
    guest.reset();  // vCPU and memory first, then the VM
    vm.reset();
    state.ResumeTiming();

    auto fresh = raw::CreateVm(*system);
    if (!fresh) {
      Fail(state, "raw VM", fresh.error());
      break;
    }
    vm.emplace(std::move(*fresh));
    auto created = raw::Guest::Create(*system, vm->get());
    if (!created) {
      Fail(state, "raw guest", created.error());
      break;
    }
    guest.emplace(std::move(*created));
    if (auto r = guest->Run(); !r) {
      Fail(state, "raw run", r.error());
      break;
    }
    if (!guest->OutValue(kHelloPort)) {
      Fail(state, "raw run", "expected the first hello OUT, got " + guest->ExitText());
      break;
    }
  }
  guest.reset();
  vm.reset();
}

void VmToFirstExitVirt(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  std::unique_ptr<virt::guest::GuestDriver> driver;
  std::unique_ptr<virt::Partition> partition;

  for (auto _ : state) {
    state.PauseTiming();
    driver.reset();  // vCPU and memory first, then the partition
    partition.reset();
    state.ResumeTiming();

    auto fresh = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!fresh) {
      Fail(state, "CreatePartition", fresh.error());
      break;
    }
    partition = std::move(*fresh);
    // GuestDriver::Create: GuestMemory::Allocate (mmap), guest::Load (memcpy),
    // Partition::MapMemory, Partition::CreateVcpu, guest::Start (Get/SetSpecialRegisters,
    // SetRegisters): the library calls a VMM makes, nothing else.
    auto created = virt::guest::GuestDriver::Create(*partition, kModeHalt, 0);
    if (!created) {
      Fail(state, "GuestDriver::Create", created.error());
      break;
    }
    driver = std::move(*created);
    auto exit = driver->vcpu().Run();
    if (!exit) {
      Fail(state, "Vcpu::Run", exit.error());
      break;
    }
    const auto* io = std::get_if<virt::IoExit>(&*exit);
    if (io == nullptr || !io->is_write || io->port != kHelloPort) {
      Fail(state, "Vcpu::Run", "expected the first hello OUT, got " + virt::guest::Describe(*exit));
      break;
    }
  }
  driver.reset();
  partition.reset();
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("vm_to_first_exit/raw", VmToFirstExitRaw)
      ->Iterations(20)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("vm_to_first_exit/virt", VmToFirstExitVirt)
      ->Iterations(20)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  AddComparison({"vm_to_first_exit", "vm_to_first_exit/raw", "vm_to_first_exit/virt",
                 Goal::RatioAtMost(1.05)});
  return true;
}();

}  // namespace
}  // namespace virt_bench
