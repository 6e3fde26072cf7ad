// irqfd_latency: eventfd signal -> guest MSI handler -> its OUT seen by the host, raw vs library.
//
// The test guest in kModeInterrupts waits in `sti; hlt`; each MSI runs its handler, which
// reports the vector with one OUT to kVectorPort (the in-kernel LAPIC answers its APIC reads,
// so that OUT is the only exit). An iteration is: signal the route's eventfd, enter the vCPU,
// see that OUT. Every side uses one MSI route on the first MSI GSI delivering vector 0x40 to
// APIC 0; the library sides go through IrqFdRoute/Event/Vcpu.
//
//   irqfd_latency            raw eventfd + KVM_IRQFD against the library's kernel irqfd;
//   irqfd_latency_user_mode  the library's kernel irqfd against virt::UserModeIrqFd (for
//                            backends without a kernel irqfd) as MakeUserModeIrqFd makes it:
//                            direct signals, so Event::Signal injects with
//                            Partition::RequestMsi (KVM_SIGNAL_MSI) on the signalling thread;
//   irqfd_latency_user_mode_dispatcher  the same without direct signals (the path of a write
//                            to the event's fd from elsewhere): the dispatcher thread wakes on
//                            the event and injects while the vCPU thread waits in KVM_RUN.
// Each row is paired (RunPaired): its two guests run alternately in batches in one process.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
#include "virt/user_mode_irqfd.h"

namespace virt_bench {
namespace {

using virt::guest::kModeInterrupts;
using virt::guest::kReadyPort;
using virt::guest::kVectorPort;

constexpr uint32_t kBatch = 50;  // ~1-3 ms per side
constexpr int64_t kPairs = 100;  // per repetition

// The raw side: a VM whose guest is ready for interrupts, one MSI route and its armed eventfd.
struct RawIrqGuest {
  raw::Fd vm;
  std::optional<raw::Guest> guest;
  raw::Fd event;

  static raw::Expected<RawIrqGuest> Create(const raw::System& system) {
    RawIrqGuest g;
    auto vm = raw::CreateVm(system);
    if (!vm) return std::unexpected("raw VM: " + vm.error());
    g.vm = std::move(*vm);
    auto guest = raw::Guest::Create(system, g.vm.get());
    if (!guest) return std::unexpected("raw guest: " + guest.error());
    g.guest.emplace(std::move(*guest));
    if (auto r = g.guest->RunToEvent(kModeInterrupts); !r) {
      return std::unexpected("raw start-up: " + r.error());
    }
    if (!g.guest->OutValue(kReadyPort)) {
      return std::unexpected("raw start-up: the guest did not report ready");
    }
    if (auto r = raw::SetMsiRouting(g.vm.get(), 1); !r) {
      return std::unexpected("raw routing: " + r.error());
    }
    auto event = raw::NewEventFd();
    if (!event) return std::unexpected("raw eventfd: " + event.error());
    g.event = std::move(*event);
    if (auto r = raw::AssignIrqfd(g.vm.get(), g.event.get(), raw::kFirstMsiGsi); !r) {
      return std::unexpected("raw irqfd: " + r.error());
    }
    return g;
  }

  BatchTime Batch(uint32_t n) {
    const uint64_t one = 1;
    return TimeLoop(n, [&](std::string& why) {
      if (::write(event.get(), &one, sizeof one) != static_cast<ssize_t>(sizeof one)) {
        why = std::string("eventfd write: ") + std::strerror(errno);
        return false;
      }
      if (auto r = guest->Run(); !r) {
        why = "raw run: " + r.error();
        return false;
      }
      const std::optional<uint32_t> vector = guest->OutValue(kVectorPort);
      if (vector != raw::kMsiData) {
        why = "raw run: " + (vector ? "guest took vector " + std::to_string(*vector)
                                    : guest->ExitText());
        return false;
      }
      return true;
    });
  }
};

// Which irqfd a library side routes through.
enum class IrqFdKind { kKernel, kUserModeDirect, kUserModeDispatcher };

// A library side: a partition whose guest is ready for interrupts and one route on the kernel
// irqfd or on a UserModeIrqFd. Members are destroyed in reverse order: the route, the
// user-mode irqfd (Shutdown), the guest, the partition.
struct LibraryIrqGuest {
  std::unique_ptr<virt::Partition> partition;
  std::unique_ptr<virt::guest::GuestDriver> driver;
  std::unique_ptr<virt::UserModeIrqFd> user_irqfd;
  std::unique_ptr<virt::IrqFdRoute> route;

  static std::expected<std::unique_ptr<LibraryIrqGuest>, std::string> Create(
      virt::Hypervisor& hv, IrqFdKind kind) {
    auto g = std::make_unique<LibraryIrqGuest>();
    auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
    if (!partition) return std::unexpected("CreatePartition: " + partition.error().Message());
    g->partition = std::move(*partition);
    auto driver = virt::guest::GuestDriver::Create(*g->partition, kModeInterrupts, 0);
    if (!driver) return std::unexpected("GuestDriver::Create: " + driver.error().Message());
    g->driver = std::move(*driver);
    auto ready = g->driver->RunToEvent();
    if (!ready) return std::unexpected("start-up: " + ready.error().Message());
    const auto* io = std::get_if<virt::IoExit>(&*ready);
    if (io == nullptr || io->port != kReadyPort) {
      return std::unexpected("start-up: expected ready, got " + virt::guest::Describe(*ready));
    }
    virt::IrqFd* irqfd = g->partition->irqfd();
    if (kind != IrqFdKind::kKernel) {
      auto made = virt::MakeUserModeIrqFd(
          *g->partition, {.direct_signals = kind == IrqFdKind::kUserModeDirect});
      if (!made) return std::unexpected("UserModeIrqFd: " + made.error().Message());
      g->user_irqfd = std::move(*made);
      irqfd = g->user_irqfd.get();
    }
    if (irqfd == nullptr) return std::unexpected("Partition::irqfd: the partition has no irqfd");
    auto route = irqfd->NewRoute();
    if (!route) return std::unexpected("IrqFd::NewRoute: " + route.error().Message());
    g->route = std::move(*route);
    if (virt::Status s = g->route->SetMsi(BenchMsi()); !s) {
      return std::unexpected("IrqFdRoute::SetMsi: " + s.error().Message());
    }
    return g;
  }

  BatchTime Batch(uint32_t n) {
    const virt::Event& event = route->event();
    virt::Vcpu& vcpu = driver->vcpu();
    return TimeLoop(n, [&](std::string& why) {
      if (virt::Status s = event.Signal(); !s) {
        why = "Event::Signal: " + s.error().Message();
        return false;
      }
      auto exit = vcpu.Run();
      if (!exit) {
        why = "Vcpu::Run: " + exit.error().Message();
        return false;
      }
      const auto* io = std::get_if<virt::IoExit>(&*exit);
      if (io == nullptr || io->port != kVectorPort || io->value() != kVector) {
        why = "Vcpu::Run: expected vector 0x40, got " + virt::guest::Describe(*exit);
        return false;
      }
      return true;
    });
  }
};

void IrqfdLatency(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  if (system == nullptr) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  auto raw_guest = RawIrqGuest::Create(*system);
  if (!raw_guest) return Fail(state, "raw side", raw_guest.error());
  auto lib = LibraryIrqGuest::Create(*hv, IrqFdKind::kKernel);
  if (!lib) return Fail(state, "library side", lib.error());
  RunPaired(state, "irqfd_latency", {.batch = kBatch},
            [&](uint32_t n) { return raw_guest->Batch(n); },
            [&](uint32_t n) { return (*lib)->Batch(n); });
}

// The kernel irqfd against a user-mode one of `kind`, as row `row`.
void KernelVsUserMode(benchmark::State& state, IrqFdKind kind, const std::string& row) {
  if (!RequireKvm(state)) return;
  virt::Hypervisor* hv = LibraryHypervisor(state);
  if (hv == nullptr) return;
  auto kernel = LibraryIrqGuest::Create(*hv, IrqFdKind::kKernel);
  if (!kernel) return Fail(state, "kernel irqfd side", kernel.error());
  auto user = LibraryIrqGuest::Create(*hv, kind);
  if (!user) return Fail(state, "user-mode irqfd side", user.error());
  RunPaired(state, row, {.batch = kBatch},
            [&](uint32_t n) { return (*kernel)->Batch(n); },
            [&](uint32_t n) { return (*user)->Batch(n); });
}

void IrqfdLatencyUserMode(benchmark::State& state) {
  KernelVsUserMode(state, IrqFdKind::kUserModeDirect, "irqfd_latency_user_mode");
}

void IrqfdLatencyUserModeDispatcher(benchmark::State& state) {
  KernelVsUserMode(state, IrqFdKind::kUserModeDispatcher, "irqfd_latency_user_mode_dispatcher");
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("irqfd_latency/paired", IrqfdLatency)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("irqfd_latency/user_mode_paired", IrqfdLatencyUserMode)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("irqfd_latency/user_mode_dispatcher_paired",
                               IrqfdLatencyUserModeDispatcher)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"irqfd_latency", "", "irqfd_latency/paired", Goal::RatioAtMost(1.01), true});
  // The user-mode irqfd against the library's kernel irqfd.
  AddComparison({"irqfd_latency_user_mode", "", "irqfd_latency/user_mode_paired",
                 Goal::RatioAtMost(1.20), true});
  // The dispatcher's thread hop, for signals that do not come through Event::Signal.
  AddComparison({"irqfd_latency_user_mode_dispatcher", "",
                 "irqfd_latency/user_mode_dispatcher_paired", Goal::None(), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
