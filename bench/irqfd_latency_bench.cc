// irqfd_latency: eventfd signal -> guest MSI handler -> its OUT seen by the host, raw vs library.
//
// The test guest in kModeInterrupts waits in `sti; hlt`; each MSI runs its handler, which
// reports the vector with one OUT to kVectorPort (the in-kernel LAPIC answers its APIC reads,
// so that OUT is the only exit). An iteration is: signal the route's eventfd, enter the vCPU,
// see that OUT. Both sides use one MSI route on GSI 24 delivering vector 0x40 to APIC 0 through
// the kernel irqfd; the library side goes through IrqFdRoute/Event/Vcpu.
//
// user_mode is the same library path with the route made by virt::UserModeIrqFd (for backends
// without a kernel irqfd): its dispatcher thread wakes on the event and injects with
// Partition::RequestMsi (KVM_SIGNAL_MSI) while the vCPU thread waits in KVM_RUN. The report
// compares it with the library's kernel irqfd.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <variant>

#include "bench_common.h"
#include "guest_driver.h"
#include "raw_kvm.h"
#include "report.h"
#include "test_guest.h"
#include "virt/user_mode_irqfd.h"

namespace virt_bench {
namespace {

using virt::guest::kModeInterrupts;
using virt::guest::kReadyPort;
using virt::guest::kVectorPort;

void IrqfdLatencyRaw(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  auto vm = raw::CreateVm(*system);
  if (!vm) return Fail(state, "raw VM", vm.error());
  auto guest = raw::Guest::Create(*system, vm->get());
  if (!guest) return Fail(state, "raw guest", guest.error());
  if (auto r = guest->RunToEvent(kModeInterrupts); !r) {
    return Fail(state, "raw start-up", r.error());
  }
  if (!guest->OutValue(kReadyPort)) {
    return Fail(state, "raw start-up", "the guest did not report ready");
  }
  if (auto r = raw::SetMsiRouting(vm->get(), 1); !r) return Fail(state, "raw routing", r.error());
  auto event = raw::NewEventFd();
  if (!event) return Fail(state, "raw eventfd", event.error());
  if (auto r = raw::AssignIrqfd(vm->get(), event->get(), raw::kFirstMsiGsi); !r) {
    return Fail(state, "raw irqfd", r.error());
  }

  const uint64_t one = 1;
  for (auto _ : state) {
    if (::write(event->get(), &one, sizeof one) != static_cast<ssize_t>(sizeof one)) {
      Fail(state, "eventfd write", std::strerror(errno));
      break;
    }
    if (auto r = guest->Run(); !r) {
      Fail(state, "raw run", r.error());
      break;
    }
    const std::optional<uint32_t> vector = guest->OutValue(kVectorPort);
    if (vector != raw::kMsiData) {
      Fail(state, "raw run", vector ? "guest took vector " + std::to_string(*vector)
                                    : guest->ExitText());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void IrqfdLatencyLibrary(benchmark::State& state, bool user_mode) {
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  auto partition = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Fail(state, "CreatePartition", partition.error());
  auto driver = virt::guest::GuestDriver::Create(**partition, kModeInterrupts, 0);
  if (!driver) return Fail(state, "GuestDriver::Create", driver.error());
  auto ready = (*driver)->RunToEvent();
  if (!ready) return Fail(state, "start-up", ready.error());
  const auto* io = std::get_if<virt::IoExit>(&*ready);
  if (io == nullptr || io->port != kReadyPort) {
    return Fail(state, "start-up", "expected ready, got " + virt::guest::Describe(*ready));
  }
  std::unique_ptr<virt::UserModeIrqFd> user_irqfd;  // shut down before the partition goes
  virt::IrqFd* irqfd = (*partition)->irqfd();
  if (user_mode) {
    auto made = virt::MakeUserModeIrqFd(**partition);
    if (!made) return Fail(state, "MakeUserModeIrqFd", made.error());
    user_irqfd = std::move(*made);
    irqfd = user_irqfd.get();
  }
  if (irqfd == nullptr) return Fail(state, "Partition::irqfd", "the partition has no irqfd");
  auto route = irqfd->NewRoute();
  if (!route) return Fail(state, "IrqFd::NewRoute", route.error());
  if (virt::Status s = (*route)->SetMsi(BenchMsi()); !s) {
    return Fail(state, "IrqFdRoute::SetMsi", s.error());
  }
  const virt::Event& event = (*route)->event();
  virt::Vcpu& vcpu = (*driver)->vcpu();

  for (auto _ : state) {
    if (virt::Status s = event.Signal(); !s) {
      Fail(state, "Event::Signal", s.error());
      break;
    }
    auto exit = vcpu.Run();
    if (!exit) {
      Fail(state, "Vcpu::Run", exit.error());
      break;
    }
    io = std::get_if<virt::IoExit>(&*exit);
    if (io == nullptr || io->port != kVectorPort || io->value() != kVector) {
      Fail(state, "Vcpu::Run", "expected vector 0x40, got " + virt::guest::Describe(*exit));
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  // Destroyed in reverse order: the route, the user-mode irqfd (Shutdown), the guest, the
  // partition.
}

void IrqfdLatencyVirt(benchmark::State& state) { IrqfdLatencyLibrary(state, false); }
void IrqfdLatencyUserMode(benchmark::State& state) { IrqfdLatencyLibrary(state, true); }

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("irqfd_latency/raw", IrqfdLatencyRaw)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("irqfd_latency/virt", IrqfdLatencyVirt)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("irqfd_latency/user_mode", IrqfdLatencyUserMode)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"irqfd_latency", "irqfd_latency/raw", "irqfd_latency/virt",
                 Goal::RatioAtMost(1.03)});
  // The user-mode irqfd against the library's kernel irqfd.
  AddComparison({"irqfd_latency_user_mode", "irqfd_latency/virt", "irqfd_latency/user_mode",
                 Goal::RatioAtMost(1.5)});
  return true;
}();

}  // namespace
}  // namespace virt_bench
