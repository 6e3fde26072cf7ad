// doorbell_registration: registering then releasing 1,024 MMIO doorbells, per registration,
// raw KVM_IOEVENTFD vs the library's Doorbells.
//
// Paired (paired.h): each side of a pair registers kDoorbells doorbells (4-byte MMIO
// writes at kBase + 8 i, no data match), then releases them in the same order; the row's time
// is that whole cycle divided by kDoorbells. Raw: eventfd(2) + KVM_IOEVENTFD assign each, then
// KVM_IOEVENTFD deassign + close(2) each. Library: Doorbells::Register each (Event::Create,
// the collision check, KVM_IOEVENTFD), then DoorbellRegistration::Release and destruction
// (deassign, close) each. Both on a VM made once per repetition with no vCPU running.
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <vector>

#include "paired.h"
#include "bench_common.h"
#include "raw_kvm.h"
#include "report.h"

namespace virt_bench {
namespace {

constexpr uint32_t kDoorbells = 1024;
constexpr uint64_t kBase = 0xd0100000;  // no memslot there
constexpr int kPairs = 10;

uint64_t Address(uint32_t i) { return kBase + 8 * uint64_t{i}; }

std::expected<double, std::string> RawCycle(int vm_fd, uint32_t n) {
  std::vector<raw::Fd> events;
  events.reserve(n);
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    auto event = raw::NewEventFd();
    if (!event) return std::unexpected(event.error());
    if (auto r = raw::AssignIoeventfd(vm_fd, event->get(), false, Address(i), 4); !r) {
      return std::unexpected(r.error());
    }
    events.push_back(std::move(*event));
  }
  for (uint32_t i = 0; i < n; ++i) {
    if (auto r = raw::DeassignIoeventfd(vm_fd, events[i].get(), false, Address(i), 4); !r) {
      return std::unexpected(r.error());
    }
    events[i].Reset();
  }
  return NsSince(start);
}

std::expected<double, std::string> LibraryCycle(virt::Doorbells& doorbells, uint32_t n) {
  std::vector<std::unique_ptr<virt::DoorbellRegistration>> bells;
  bells.reserve(n);
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n; ++i) {
    auto bell = doorbells.Register({.space = virt::DoorbellSpace::kMmio,
                                    .address = Address(i),
                                    .length = 4,
                                    .data = std::nullopt});
    if (!bell) return std::unexpected("Doorbells::Register: " + bell.error().Message());
    bells.push_back(std::move(*bell));
  }
  for (auto& bell : bells) {
    if (virt::Status s = bell->Release(); !s) {
      return std::unexpected("DoorbellRegistration::Release: " + s.error().Message());
    }
    bell.reset();
  }
  return NsSince(start);
}

void DoorbellRegistration(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  virt::Hypervisor* hv = system ? LibraryHypervisor(state) : nullptr;
  if (hv == nullptr) return;
  auto vm = raw::CreateVm(*system);
  if (!vm) return Fail(state, "raw VM", vm.error());
  auto partition = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Fail(state, "CreatePartition", partition.error());
  virt::Doorbells* doorbells = (*partition)->doorbells();
  if (doorbells == nullptr) return Fail(state, "Partition::doorbells", "none on this host");
  RunPaired(
      state, "doorbell_registration", {.batch = kDoorbells},
      [&](uint32_t n) { return RawCycle(vm->get(), n); },
      [&](uint32_t n) { return LibraryCycle(*doorbells, n); });
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("doorbell_registration/paired", DoorbellRegistration)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"doorbell_registration", "", "doorbell_registration/paired",
                 Goal::RatioAtMost(1.2), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
