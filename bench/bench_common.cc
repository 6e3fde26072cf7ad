// bench_common: the once-per-process /dev/kvm probe and the opened raw and library backends.
#include "bench_common.h"

#include <memory>
#include <optional>

#include "virt/kvm/kvm_hypervisor.h"
#include "virt/kvm/kvm_ioctl.h"

namespace virt_bench {

const std::string& KvmUnavailableReason() {
  static const std::string reason = [] {
    const virt::Availability a =
        virt::kvm::KvmHypervisor::Probe(virt::kvm::MakeSystemKvmIoctl());
    // Only a device that cannot be opened skips everything. When it opens but the library
    // refuses it (API version, a capability, a failing ioctl), the raw baselines still run
    // and the library benchmarks fail with the library's own error (see LibraryHypervisor).
    if (a.available() || (a.why != virt::Unavailability::kDeviceMissing &&
                          a.why != virt::Unavailability::kPermissionDenied)) {
      return std::string();
    }
    return "needs /dev/kvm: " + std::string(virt::ToString(a.why)) + " (" + a.reason + ")";
  }();
  return reason;
}

bool RequireKvm(benchmark::State& state) {
  const std::string& reason = KvmUnavailableReason();
  if (reason.empty()) return true;
  state.SkipWithError(reason.c_str());
  return false;
}

void Fail(benchmark::State& state, const std::string& step, const std::string& message) {
  const std::string text = step + ": " + message;
  state.SkipWithError(text.c_str());
}

void Fail(benchmark::State& state, const std::string& step, const virt::Error& error) {
  Fail(state, step, error.Message());
}

virt::Hypervisor* LibraryHypervisor(benchmark::State& state) {
  static const auto opened = virt::kvm::KvmHypervisor::Create(virt::kvm::MakeSystemKvmIoctl());
  if (!opened) {
    Fail(state, "library KVM backend unusable: KvmHypervisor::Create", opened.error());
    return nullptr;
  }
  return opened->get();
}

const raw::System* RawSystem(benchmark::State& state) {
  static const auto opened = raw::System::Open();
  if (!opened) {
    Fail(state, "raw /dev/kvm", opened.error());
    return nullptr;
  }
  return &*opened;
}

raw::Expected<void> ProgramRawRoutes(int vm_fd, uint32_t n, std::vector<raw::Fd>& events) {
  const size_t first = events.size();
  for (uint32_t i = 0; i < n; ++i) {
    auto event = raw::NewEventFd();
    if (!event) return std::unexpected(event.error());
    events.push_back(std::move(*event));
  }
  // The entries must be in a pushed table before any irqfd points at them (the same order the
  // library keeps).
  if (auto pushed = raw::SetMsiRouting(vm_fd, n); !pushed) return pushed;
  for (uint32_t i = 0; i < n; ++i) {
    auto assigned = raw::AssignIrqfd(vm_fd, events[first + i].get(), raw::kFirstMsiGsi + i);
    if (!assigned) return assigned;
  }
  return {};
}

namespace {

virt::Status AddLibraryRoutes(virt::IrqFd& irqfd, uint32_t n,
                              std::vector<std::unique_ptr<virt::IrqFdRoute>>& routes) {
  const virt::MsiMessage msi = BenchMsi();
  for (uint32_t i = 0; i < n; ++i) {
    auto route = irqfd.NewRoute();
    if (!route) return route.error();
    if (virt::Status s = (*route)->SetMsi(msi); !s) return s;
    routes.push_back(std::move(*route));
  }
  return virt::Ok();
}

}  // namespace

virt::Status ProgramLibraryRoutes(virt::IrqFd& irqfd, uint32_t n, bool batched,
                                  std::vector<std::unique_ptr<virt::IrqFdRoute>>& routes) {
  if (!batched) return AddLibraryRoutes(irqfd, n, routes);
  virt::RouteBatch batch(irqfd);
  if (virt::Status s = AddLibraryRoutes(irqfd, n, routes); !s) return s;
  return batch.Commit();
}

}  // namespace virt_bench
