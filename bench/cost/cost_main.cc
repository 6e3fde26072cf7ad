// virt-cost: hot paths through the public API over FakeKvmIoctl, one callgrind dump per loop.
//
// Each measured loop runs between CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS_AT(name), so
// under `valgrind --tool=callgrind` every dump holds exactly that loop's instructions (all
// threads). Each library loop has a raw twin that makes the same fake ioctl (or syscall)
// directly, the way a hand-written VMM would; run_callgrind.sh subtracts the twin, leaving the
// user-space instructions the library adds. Run without valgrind, the program only checks that
// every loop works (the ctest smoke test). Prints one "section NAME OPS" line per dump.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef VIRT_COST_NO_CALLGRIND
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(name) (void)(name)
#else
#include <valgrind/callgrind.h>
#endif

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <variant>
#include <vector>

#include "fake_kvm_ioctl.h"
#include "vcpu_state_twin.h"
#include "virt/dirty_log.h"
#include "virt/event.h"
#include "virt/irqfd.h"
#include "virt/kvm/kvm_hypervisor.h"
#include "virt/memory_region.h"
#include "virt/partition.h"
#include "virt/user_mode_irqfd.h"
#include "virt/vcpu.h"
#include "virt/vcpu_state_control.h"

namespace virt::cost {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "virt-cost: %s\n", what);
  std::exit(1);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "virt-cost: %s: %s\n", what, r.error().Message().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

void Must(Status s, const char* what) {
  if (!s) {
    std::fprintf(stderr, "virt-cost: %s: %s\n", what, s.error().Message().c_str());
    std::exit(1);
  }
}

// Keeps `value` alive for the optimiser.
template <typename T>
inline void Use(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

// Runs `body` a few times unmeasured (lazy binding, first-use allocations), then `iterations`
// times between a zero and a dump of the callgrind counters. `ops` operations per iteration.
template <typename Body>
void Measure(const char* name, uint64_t iterations, uint64_t ops, Body&& body) {
  for (int i = 0; i < 8; ++i) body();
  CALLGRIND_ZERO_STATS;
  for (uint64_t i = 0; i < iterations; ++i) body();
  CALLGRIND_DUMP_STATS_AT(name);
  std::printf("section %s %llu\n", name, static_cast<unsigned long long>(iterations * ops));
  std::fflush(stdout);
}

// As Measure, with `reset` after each iteration left out of the counts (collection is off
// while it runs): for a body that makes objects which must go before the next iteration.
template <typename Body, typename Reset>
void MeasureEach(const char* name, uint64_t iterations, uint64_t ops, Body&& body, Reset&& reset) {
  for (int i = 0; i < 2; ++i) {
    body();
    reset();
  }
  CALLGRIND_ZERO_STATS;
  for (uint64_t i = 0; i < iterations; ++i) {
    body();
    CALLGRIND_TOGGLE_COLLECT;
    reset();
    CALLGRIND_TOGGLE_COLLECT;
  }
  CALLGRIND_DUMP_STATS_AT(name);
  std::printf("section %s %llu\n", name, static_cast<unsigned long long>(iterations * ops));
  std::fflush(stdout);
}

constexpr uint64_t kIterations = 20000;
constexpr uint32_t kBatchRoutes = 2048;
constexpr uint32_t kRetargetRoutes = 64;

// The fake as the seam a raw caller would hold: hidden from the optimiser so every call stays a
// virtual call, as a call through the library's seam is.
kvm::KvmIoctl& Seam(FakeKvmIoctl& fake) {
  kvm::KvmIoctl* seam = &fake;
  asm volatile("" : "+r"(seam));
  return *seam;
}

MsiMessage Msi(uint8_t vector) { return MsiMessage::Fixed(0, vector); }

void PrepareIoExit(kvm_run* run) {
  run->exit_reason = KVM_EXIT_IO;
  run->io.direction = KVM_EXIT_IO_OUT;
  run->io.size = 1;
  run->io.port = 0x3f8;
  run->io.count = 1;
  run->io.data_offset = FakeKvmIoctl::kIoDataOffset;
}

void PrepareMmioExit(kvm_run* run) {
  run->exit_reason = KVM_EXIT_MMIO;
  run->mmio.phys_addr = 0xd0000000;
  run->mmio.len = 4;
  run->mmio.is_write = 1;
  run->mmio.data[0] = 0x5a;
}

void MeasureExits(FakeKvmIoctl& fake, Vcpu& vcpu) {
  kvm_run* run = fake.run();
  kvm::KvmIoctl& seam = Seam(fake);
  PrepareIoExit(run);
  Measure("pio_exit.raw", kIterations, 1, [&] {
    if (!seam.Run(FakeKvmIoctl::kVcpuFd)) Fail("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_IO) Fail("not an IO exit");
    Use(run->io.port);
  });
  Measure("pio_exit.library", kIterations, 1, [&] {
    Result<VcpuExit> exit = vcpu.Run();
    if (!exit) Fail("Run");
    const IoExit* io = std::get_if<IoExit>(&*exit);
    if (io == nullptr) Fail("not an IoExit");
    Use(io->port);
  });
  PrepareMmioExit(run);
  Measure("mmio_exit.raw", kIterations, 1, [&] {
    if (!seam.Run(FakeKvmIoctl::kVcpuFd)) Fail("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_MMIO) Fail("not an MMIO exit");
    Use(run->mmio.phys_addr);
  });
  Measure("mmio_exit.library", kIterations, 1, [&] {
    Result<VcpuExit> exit = vcpu.Run();
    if (!exit) Fail("Run");
    const MmioExit* mmio = std::get_if<MmioExit>(&*exit);
    if (mmio == nullptr) Fail("not an MmioExit");
    Use(mmio->address);
  });
  // Cancel, then the Run that consumes it (no KVM_RUN is made).
  Measure("cancelled_run.library", kIterations, 1, [&] {
    vcpu.Cancel();
    Result<VcpuExit> exit = vcpu.Run();
    if (!exit || !std::holds_alternative<CancelledExit>(*exit)) Fail("not a CancelledExit");
  });
}

// The raw twin of a table push: KVM_SET_GSI_ROUTING of the 40 irqchip pins and kBatchRoutes
// MSIs (GSIs 24 on), built by hand into `table` (room for 40 + kBatchRoutes entries).
void PushRawTable(kvm::KvmIoctl& seam, kvm_irq_routing& table, const MsiMessage& msi) {
  table.nr = 40 + kBatchRoutes;
  table.flags = 0;
  kvm_irq_routing_entry* e = table.entries;
  for (uint32_t pin = 0; pin < 40; ++pin) {
    e[pin] = kvm_irq_routing_entry{};
    e[pin].gsi = pin < 16 ? pin : pin - 16;
    e[pin].type = KVM_IRQ_ROUTING_IRQCHIP;
    e[pin].u.irqchip.irqchip = pin < 8 ? 0 : pin < 16 ? 1 : 2;
    e[pin].u.irqchip.pin = pin < 16 ? pin % 8 : pin - 16;
  }
  for (uint32_t r = 0; r < kBatchRoutes; ++r) {
    kvm_irq_routing_entry& m = e[40 + r];
    m = kvm_irq_routing_entry{};
    m.gsi = 24 + r;
    m.type = KVM_IRQ_ROUTING_MSI;
    m.u.msi.address_lo = msi.address_lo();
    m.u.msi.address_hi = msi.address_hi();
    m.u.msi.data = msi.data;
  }
  Must(seam.SetGsiRouting(FakeKvmIoctl::kVmFd, table), "KVM_SET_GSI_ROUTING");
}

std::vector<std::unique_ptr<IrqFdRoute>> EnabledRoutes(IrqFd& irqfd, uint32_t count) {
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  RouteBatch batch(irqfd);
  for (uint32_t i = 0; i < count; ++i) {
    routes.push_back(Must(irqfd.NewRoute(), "NewRoute"));
    Must(routes.back()->SetMsi(Msi(0x40)), "SetMsi");
  }
  return routes;
}

void MeasureRoutes(FakeKvmIoctl& fake, IrqFd& irqfd) {
  // Retargeting one enabled route inside an open batch (the push is not measured).
  {
    auto routes = EnabledRoutes(irqfd, kRetargetRoutes);
    RouteBatch batch(irqfd);
    uint32_t i = 0;
    Measure("set_msi_in_batch.library", kIterations, 1, [&] {
      Must(routes[i % kRetargetRoutes]->SetMsi(Msi(static_cast<uint8_t>(0x41 + (i & 1)))),
           "SetMsi");
      ++i;
    });
  }
  // A whole batch retargeting 2048 routes, push included, per route.
  auto routes = EnabledRoutes(irqfd, kBatchRoutes);
  uint8_t vector = 0x50;
  const uint64_t pushes_before = fake.routing_push_count();
  Measure("route_in_2048_batch.library", 20, kBatchRoutes, [&] {
    RouteBatch batch(irqfd);
    ++vector;
    for (auto& route : routes) Must(route->SetMsi(Msi(vector)), "SetMsi");
  });
  if (fake.routing_push_count() - pushes_before != 28) Fail("one push per batch expected");
  // The raw twin: a hand-built KVM_SET_GSI_ROUTING table of the 40 irqchip pins + 2048 MSIs.
  const size_t entries = 40 + kBatchRoutes;
  std::vector<kvm_irq_routing_entry> storage(entries + 1);
  auto* table = reinterpret_cast<kvm_irq_routing*>(storage.data());
  kvm::KvmIoctl& seam = Seam(fake);
  Measure("route_in_2048_batch.raw", 20, kBatchRoutes, [&] {
    ++vector;
    PushRawTable(seam, *table, Msi(vector));
  });

  // Creating and enabling 2048 routes in one batch (route_programming's work in user space):
  // NewRoute + SetMsi each, then the commit's push and assigns, per route; the teardown is not
  // counted. Raw: an eventfd each, the table built by hand and pushed, a KVM_IRQFD each.
  {
    RouteBatch batch(irqfd);
    routes.clear();
  }
  std::vector<std::unique_ptr<IrqFdRoute>> created;
  created.reserve(kBatchRoutes);
  MeasureEach(
      "route_create_in_2048_batch.library", 10, kBatchRoutes,
      [&] {
        RouteBatch batch(irqfd);
        for (uint32_t r = 0; r < kBatchRoutes; ++r) {
          auto route = Must(irqfd.NewRoute(), "NewRoute");
          Must(route->SetMsi(Msi(0x60)), "SetMsi");
          created.push_back(std::move(route));
        }
        Must(batch.Commit(), "Commit");
      },
      [&] {
        RouteBatch batch(irqfd);  // one push for the whole teardown
        created.clear();
      });
  std::vector<int> fds;
  fds.reserve(kBatchRoutes);
  MeasureEach(
      "route_create_in_2048_batch.raw", 10, kBatchRoutes,
      [&] {
        for (uint32_t r = 0; r < kBatchRoutes; ++r) {
          const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
          if (fd < 0) Fail("eventfd");
          fds.push_back(fd);
        }
        PushRawTable(seam, *table, Msi(0x60));
        for (uint32_t r = 0; r < kBatchRoutes; ++r) {
          kvm_irqfd assign{};
          assign.fd = static_cast<uint32_t>(fds[r]);
          assign.gsi = 24 + r;
          Must(seam.Irqfd(FakeKvmIoctl::kVmFd, assign), "KVM_IRQFD");
        }
      },
      [&] {
        for (int fd : fds) ::close(fd);
        fds.clear();
      });
}

void MeasureEventSignal() {
  Event event = Must(Event::Create(), "Event::Create");
  const int fd = event.native_handle();
  Measure("event_signal.raw", kIterations, 1, [&] {
    const uint64_t one = 1;
    if (::write(fd, &one, sizeof one) != sizeof one) Fail("write(eventfd)");
  });
  Measure("event_signal.library", kIterations, 1, [&] { Must(event.Signal(), "Signal"); });
}

// One user-mode dispatch: a device signals the route's event, the dispatcher thread wakes and
// injects through Partition::RequestMsi (KVM_SIGNAL_MSI, which the fake answers by writing
// `done`), and the signalling thread waits for that. Then the same with direct signals, where
// the injection happens inside Signal.
void MeasureUserModeDispatch(FakeKvmIoctl& fake, Partition& partition) {
  const int done = ::eventfd(0, EFD_CLOEXEC);
  if (done < 0) Fail("eventfd");
  fake.set_msi_completion(done);
  auto wait_done = [done] {
    uint64_t n = 0;
    if (::read(done, &n, sizeof n) != sizeof n) Fail("read(done)");
  };

  // The raw twin: an epoll loop on one eventfd that reads it and calls KVM_SIGNAL_MSI.
  {
    const int trigger = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (trigger < 0 || ep < 0) Fail("eventfd/epoll");
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, trigger, &ev) != 0) Fail("epoll_ctl");
    std::atomic<bool> stop{false};
    kvm::KvmIoctl& seam = Seam(fake);
    std::thread dispatcher([&] {
      kvm_msi msi{};
      msi.address_lo = 0xfee00000;
      msi.data = 0x40;
      for (;;) {
        epoll_event got{};
        if (::epoll_wait(ep, &got, 1, -1) != 1) continue;
        uint64_t n = 0;
        if (::read(trigger, &n, sizeof n) != sizeof n) continue;
        if (stop.load(std::memory_order_relaxed)) return;
        if (!seam.SignalMsi(FakeKvmIoctl::kVmFd, msi)) Fail("KVM_SIGNAL_MSI");
      }
    });
    Measure("user_mode_dispatch.raw", kIterations / 4, 1, [&] {
      const uint64_t one = 1;
      if (::write(trigger, &one, sizeof one) != sizeof one) Fail("write(trigger)");
      wait_done();
    });
    stop.store(true);
    const uint64_t one = 1;
    if (::write(trigger, &one, sizeof one) != sizeof one) Fail("write(trigger)");
    dispatcher.join();
    ::close(ep);
    ::close(trigger);
  }

  // Without direct signals: the dispatcher's path (a signal made past Event::Signal takes it).
  {
    auto irqfd = Must(MakeUserModeIrqFd(partition, {.direct_signals = false}), "MakeUserModeIrqFd");
    auto route = Must(irqfd->NewRoute(), "NewRoute");
    Must(route->SetMsi(Msi(0x40)), "SetMsi");
    const Event& event = route->event();
    Measure("user_mode_dispatch.library", kIterations / 4, 1, [&] {
      Must(event.Signal(), "Signal");
      wait_done();
    });
    Must(route->Release(), "Release");
    Must(irqfd->Shutdown(), "Shutdown");
  }

  // Direct signals (MakeUserModeIrqFd): Signal injects on the signalling thread. The raw twin is
  // a device calling KVM_SIGNAL_MSI itself.
  {
    kvm::KvmIoctl& seam = Seam(fake);
    kvm_msi msi{};
    msi.address_lo = 0xfee00000;
    msi.data = 0x40;
    Measure("user_mode_direct_signal.raw", kIterations, 1, [&] {
      if (!seam.SignalMsi(FakeKvmIoctl::kVmFd, msi)) Fail("KVM_SIGNAL_MSI");
      wait_done();
    });
    auto irqfd = Must(MakeUserModeIrqFd(partition), "MakeUserModeIrqFd");
    auto route = Must(irqfd->NewRoute(), "NewRoute");
    Must(route->SetMsi(Msi(0x40)), "SetMsi");
    const Event& event = route->event();
    Measure("user_mode_direct_signal.library", kIterations, 1, [&] {
      Must(event.Signal(), "Signal");
      wait_done();
    });
    Must(route->Release(), "Release");
    Must(irqfd->Shutdown(), "Shutdown");
  }
  fake.set_msi_completion(-1);
  ::close(done);
}

// Saving and restoring one vCPU's full state against the same seam calls into buffers kept
// (VcpuStateTwin), and reading the dirty bitmap of a whole 1 GiB slot against one
// KVM_GET_DIRTY_LOG into a reused bitmap.
void MeasureSnapshotPaths(FakeKvmIoctl& fake, Partition& partition, Vcpu& vcpu) {
  VcpuStateControl* control = vcpu.state();
  if (control == nullptr) Fail("no vCPU state control");
  // The loop a migration makes: one VcpuState kept, SaveStateInto reusing its storage.
  VcpuState kept;
  Measure("vcpu_state_save_restore.library", kIterations / 20, 1, [&] {
    Must(control->SaveStateInto(kept), "SaveStateInto");
    Must(control->RestoreState(kept, RestoreMode::kStopOnFailure), "RestoreState");
  });
  // A fresh VcpuState from SaveState() each time (what the reuse saves: the parts' allocations).
  Measure("vcpu_state_fresh_save_restore.library", kIterations / 20, 1, [&] {
    VcpuState state = Must(control->SaveState(), "SaveState");
    Must(control->RestoreState(state, RestoreMode::kStopOnFailure), "RestoreState");
  });
  {
    VcpuState saved = Must(control->SaveState(), "SaveState");
    if (!saved.msrs || saved.msrs->size() != FakeKvmIoctl::kSaveableMsrs) Fail("saveable MSRs");
    if (!saved.cpuid || saved.cpuid->empty()) Fail("no CPUID");
    std::vector<uint32_t> msrs;
    for (const MsrEntry& m : *saved.msrs) msrs.push_back(m.index);
    VcpuStateTwin twin(Seam(fake), FakeKvmIoctl::kVcpuFd, std::move(msrs));
    Measure("vcpu_state_save_restore.raw", kIterations / 20, 1, [&] { twin.SaveRestore(); });
  }

  constexpr uint64_t kGiB = uint64_t{1} << 30;
  constexpr uint64_t kGuest = uint64_t{1} << 32;
  void* host = ::mmap(nullptr, kGiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (host == MAP_FAILED) Fail("mmap(1 GiB)");
  Must(partition.MapMemory(MemoryRegion{kGuest, kGiB, host, MemoryFlags::kDirtyLog}), "MapMemory");
  DirtyLog* log = partition.dirty_log();
  if (log == nullptr) Fail("no dirty log");
  Measure("dirty_bitmap_1g.library", kIterations / 20, 1, [&] {
    auto bits = Must(log->ReadAndClear(kGuest, kGiB), "ReadAndClear");
    Use(bits.data());
  });
  std::vector<uint64_t> raw_bits(kGiB / 4096 / 64);
  Measure("dirty_bitmap_1g.raw", kIterations / 20, 1, [&] {
    kvm_dirty_log dirty{};
    dirty.slot = 0;
    dirty.dirty_bitmap = raw_bits.data();
    Must(Seam(fake).GetDirtyLog(FakeKvmIoctl::kVmFd, dirty), "GetDirtyLog");
    Use(raw_bits.data());
  });
  Must(partition.UnmapMemory(kGuest, kGiB), "UnmapMemory");
  ::munmap(host, kGiB);
}

int Main() {
  auto fake = std::make_shared<FakeKvmIoctl>();
  auto hypervisor = Must(kvm::KvmHypervisor::Create(fake), "KvmHypervisor::Create");
  auto partition = Must(hypervisor->CreatePartition(PartitionConfig{}), "CreatePartition");
  auto vcpu = Must(partition->CreateVcpu(0), "CreateVcpu");
  if (partition->irqfd() == nullptr) Fail("no kernel irqfd");

  MeasureExits(*fake, *vcpu);
  MeasureRoutes(*fake, *partition->irqfd());
  MeasureEventSignal();
  MeasureUserModeDispatch(*fake, *partition);
  MeasureSnapshotPaths(*fake, *partition, *vcpu);
  return 0;
}

}  // namespace
}  // namespace virt::cost

int main() { return virt::cost::Main(); }
