// doorbell_loops: raw, library and PIO-exit doorbell round trips on the kModePortDoorbell guest.
#include "doorbell_loops.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <variant>

#include "paired.h"
#include "bench_common.h"
#include "test_guest.h"

namespace virt_bench {
namespace {

using virt::guest::kDoorbellPort;
using virt::guest::kModePortDoorbell;
using virt::guest::kStopVector;
using virt::guest::kVectorPort;

// How long a ring may take before the loop gives up (the guest or the host is stuck).
constexpr std::chrono::seconds kRingBound{10};
constexpr int kRingBoundMs = 10'000;
constexpr int kEpollBatch = 64;  // as virt::Poller's epoll_wait

std::unexpected<std::string> Failed(const std::string& what) { return std::unexpected(what); }

std::string Errno(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

// The guest's final report: the rings it got answered.
Made<void> CheckReport(const std::string& thread_result, uint32_t reported, uint64_t rounds) {
  if (!thread_result.empty()) return Failed(thread_result);
  if (reported != rounds) {
    return Failed("the guest counted " + std::to_string(reported) + " answers, the device sent " +
                  std::to_string(rounds));
  }
  return {};
}

}  // namespace

// --- raw ---

Made<std::unique_ptr<RawDoorbellLoop>> RawDoorbellLoop::Start(const raw::System& system) {
  std::unique_ptr<RawDoorbellLoop> l(new RawDoorbellLoop());
  auto vm = raw::CreateVm(system);
  if (!vm) return Failed(vm.error());
  l->vm_ = std::move(*vm);
  auto guest = raw::Guest::Create(system, l->vm_.get());
  if (!guest) return Failed(guest.error());
  l->guest_.emplace(std::move(*guest));
  if (auto r = raw::SetMsiRouting(l->vm_.get(), 1); !r) return Failed(r.error());
  auto irq = raw::NewEventFd();
  if (!irq) return Failed(irq.error());
  l->irq_event_ = std::move(*irq);
  if (auto r = raw::AssignIrqfd(l->vm_.get(), l->irq_event_.get(), raw::kFirstMsiGsi); !r) {
    return Failed(r.error());
  }
  auto bell = raw::NewEventFd();
  if (!bell) return Failed(bell.error());
  l->bell_ = std::move(*bell);
  if (auto r = raw::AssignIoeventfd(l->vm_.get(), l->bell_.get(), true, kDoorbellPort, 4); !r) {
    return Failed(r.error());
  }
  l->epoll_ = raw::Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (l->epoll_.get() < 0) return Failed(Errno("epoll_create1"));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 1;
  if (::epoll_ctl(l->epoll_.get(), EPOLL_CTL_ADD, l->bell_.get(), &ev) != 0) {
    return Failed(Errno("epoll_ctl"));
  }
  RawDoorbellLoop* self = l.get();
  l->vcpu_thread_ = std::thread([self] {
    if (auto r = self->guest_->RunToEvent(kModePortDoorbell); !r) {
      self->vcpu_result_ = "raw vCPU: " + r.error();
      return;
    }
    const auto count = self->guest_->OutValue(kVectorPort);
    if (!count) {
      self->vcpu_result_ = "raw vCPU: expected the final report, got " + self->guest_->ExitText();
      return;
    }
    self->reported_ = *count;
  });
  if (auto r = l->WaitRing(); !r) return Failed("raw first ring: " + r.error());
  return l;
}

RawDoorbellLoop::~RawDoorbellLoop() { (void)Stop(); }

Made<void> RawDoorbellLoop::WaitRing() {
  epoll_event events[kEpollBatch];
  for (;;) {
    const int n = ::epoll_wait(epoll_.get(), events, kEpollBatch, kRingBoundMs);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Failed(Errno("epoll_wait"));
    if (n == 0) return Failed("no ring within 10 s");
    uint64_t rings = 0;
    if (::read(bell_.get(), &rings, sizeof rings) != static_cast<ssize_t>(sizeof rings)) {
      if (errno == EAGAIN) continue;
      return Failed(Errno("read doorbell eventfd"));
    }
    return {};
  }
}

Made<double> RawDoorbellLoop::Batch(uint32_t n) {
  const uint64_t one = 1;
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    if (::write(irq_event_.get(), &one, sizeof one) != static_cast<ssize_t>(sizeof one)) {
      return Failed(Errno("write irqfd eventfd"));
    }
    ++rounds_;
    if (auto r = WaitRing(); !r) return Failed("raw ring: " + r.error());
  }
  return NsSince(start);
}

Made<void> RawDoorbellLoop::Stop() {
  if (!vcpu_thread_.joinable()) return {};
  if (auto r = raw::SignalMsi(vm_.get(), kStopVector); !r) {
    // The thread would never return: nothing to join safely.
    vcpu_thread_.detach();
    return Failed(r.error());
  }
  vcpu_thread_.join();
  return CheckReport(vcpu_result_, reported_, rounds_);
}

// --- library ---

Made<std::unique_ptr<LibraryDoorbellLoop>> LibraryDoorbellLoop::Start(virt::Hypervisor& hv) {
  std::unique_ptr<LibraryDoorbellLoop> l(new LibraryDoorbellLoop());
  auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Failed("CreatePartition: " + partition.error().Message());
  l->partition_ = std::move(*partition);
  auto driver = virt::guest::GuestDriver::Create(*l->partition_, kModePortDoorbell, 0);
  if (!driver) return Failed("GuestDriver::Create: " + driver.error().Message());
  l->driver_ = std::move(*driver);
  virt::IrqFd* irqfd = l->partition_->irqfd();
  virt::Doorbells* doorbells = l->partition_->doorbells();
  if (irqfd == nullptr || doorbells == nullptr) return Failed("no irqfd or no doorbells");
  auto route = irqfd->NewRoute();
  if (!route) return Failed("IrqFd::NewRoute: " + route.error().Message());
  l->route_ = std::move(*route);
  if (virt::Status s = l->route_->SetMsi(BenchMsi()); !s) {
    return Failed("IrqFdRoute::SetMsi: " + s.error().Message());
  }
  auto bell = doorbells->Register({.space = virt::DoorbellSpace::kPio,
                                   .address = kDoorbellPort,
                                   .length = 4,
                                   .data = std::nullopt});
  if (!bell) return Failed("Doorbells::Register: " + bell.error().Message());
  l->bell_ = std::move(*bell);
  auto poller = virt::Poller::Create();
  if (!poller) return Failed("Poller::Create: " + poller.error().Message());
  l->poller_.emplace(std::move(*poller));
  LibraryDoorbellLoop* self = l.get();
  auto watch = l->poller_->Add(l->bell_->event(), [self] {
    auto n = self->bell_->event().TryWait();
    if (n) {
      self->rings_ += *n;
    } else {
      ++self->errors_;
    }
  });
  if (!watch) return Failed("Poller::Add: " + watch.error().Message());
  l->vcpu_thread_ = std::thread([self] {
    auto exit = self->driver_->RunToEvent();
    if (!exit) {
      self->vcpu_result_ = "Vcpu::Run: " + exit.error().Message();
      return;
    }
    const auto* io = std::get_if<virt::IoExit>(&*exit);
    if (io == nullptr || !io->is_write || io->port != kVectorPort) {
      self->vcpu_result_ = "expected the final report, got " + virt::guest::Describe(*exit);
      return;
    }
    self->reported_ = io->value();
  });
  if (auto r = l->WaitRing(); !r) return Failed("first ring: " + r.error());
  return l;
}

LibraryDoorbellLoop::~LibraryDoorbellLoop() { (void)Stop(); }

Made<void> LibraryDoorbellLoop::WaitRing() {
  const uint64_t target = rings_ + 1;
  const auto deadline = std::chrono::steady_clock::now() + kRingBound;
  while (rings_ < target) {
    auto ran = poller_->Wait(kRingBound);
    if (!ran) return Failed("Poller::Wait: " + ran.error().Message());
    if (errors_ != 0) return Failed("Event::TryWait failed in the poller callback");
    if (rings_ < target && std::chrono::steady_clock::now() > deadline) {
      return Failed("no ring within 10 s");
    }
  }
  return {};
}

Made<double> LibraryDoorbellLoop::Batch(uint32_t n) {
  const virt::Event& msi = route_->event();
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    if (virt::Status s = msi.Signal(); !s) return Failed("Event::Signal: " + s.error().Message());
    ++rounds_;
    if (auto r = WaitRing(); !r) return Failed("ring: " + r.error());
  }
  return NsSince(start);
}

Made<void> LibraryDoorbellLoop::Stop() {
  if (!vcpu_thread_.joinable()) return {};
  auto sent = partition_->RequestMsi(virt::MsiMessage::Fixed(0, kStopVector));
  if (!sent || !*sent) {
    vcpu_thread_.detach();  // it would never return
    return Failed("RequestMsi (stop): " +
                  (sent ? std::string("not delivered") : sent.error().Message()));
  }
  vcpu_thread_.join();
  return CheckReport(vcpu_result_, reported_, rounds_);
}

// --- PIO exit ---

Made<std::unique_ptr<PioExitLoop>> PioExitLoop::Start(virt::Hypervisor& hv) {
  std::unique_ptr<PioExitLoop> l(new PioExitLoop());
  auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Failed("CreatePartition: " + partition.error().Message());
  l->partition_ = std::move(*partition);
  auto driver = virt::guest::GuestDriver::Create(*l->partition_, kModePortDoorbell, 0);
  if (!driver) return Failed("GuestDriver::Create: " + driver.error().Message());
  l->driver_ = std::move(*driver);
  auto first = l->driver_->RunToEvent();
  if (!first) return Failed("Vcpu::Run: " + first.error().Message());
  const auto* io = std::get_if<virt::IoExit>(&*first);
  if (io == nullptr || !io->is_write || io->port != kDoorbellPort || io->value() != 0) {
    return Failed("expected ring 0, got " + virt::guest::Describe(*first));
  }
  return l;
}

Made<double> PioExitLoop::Batch(uint32_t n) {
  const virt::MsiMessage msi = BenchMsi();
  virt::Partition& partition = *partition_;
  virt::Vcpu& vcpu = driver_->vcpu();
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    auto sent = partition.RequestMsi(msi);
    if (!sent || !*sent) {
      return Failed("RequestMsi: " +
                    (sent ? std::string("not delivered") : sent.error().Message()));
    }
    auto exit = vcpu.Run();
    if (!exit) return Failed("Vcpu::Run: " + exit.error().Message());
    const auto* io = std::get_if<virt::IoExit>(&*exit);
    ++next_ring_;
    if (io == nullptr || !io->is_write || io->port != kDoorbellPort || io->value() != next_ring_) {
      return Failed("expected ring " + std::to_string(next_ring_) + ", got " +
                    virt::guest::Describe(*exit));
    }
  }
  return NsSince(start);
}

}  // namespace virt_bench
