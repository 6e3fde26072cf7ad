// bench_common: what every benchmark file shares: the /dev/kvm check, opened backends, failures.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raw_kvm.h"
#include "virt/hypervisor.h"
#include "virt/irqfd.h"
#include "virt/msi_message.h"
#include "virt/result.h"

namespace virt_bench {

// The vector every benchmark route and the interrupt guest use (raw::kMsiData on the raw side).
inline constexpr uint8_t kVector = 0x40;

// The MSI the library routes deliver; the same bits as raw::kMsiAddress / raw::kMsiData.
inline virt::MsiMessage BenchMsi() { return virt::MsiMessage::Fixed(0, kVector); }

// Empty when /dev/kvm can be opened, else "needs /dev/kvm: <why>" (probed once per process with
// KvmHypervisor::Probe: device missing or permission denied).
const std::string& KvmUnavailableReason();

// Skips the benchmark with KvmUnavailableReason() when /dev/kvm cannot be opened. True when it
// may run.
bool RequireKvm(benchmark::State& state);

// state.SkipWithError with "<step>: <message>"; the caller then leaves the benchmark loop.
void Fail(benchmark::State& state, const std::string& step, const std::string& message);
void Fail(benchmark::State& state, const std::string& step, const virt::Error& error);

// The library's KVM hypervisor and the raw /dev/kvm, each opened once per process (a VMM opens
// its hypervisor once, too). nullptr after a Fail() when they cannot be opened.
virt::Hypervisor* LibraryHypervisor(benchmark::State& state);
const raw::System* RawSystem(benchmark::State& state);

// Programs `n` MSI routes the raw way: n eventfds (appended to `events`), one KVM_SET_GSI_ROUTING
// holding all n entries, n KVM_IRQFD assigns on GSIs raw::kFirstMsiGsi...
raw::Expected<void> ProgramRawRoutes(int vm_fd, uint32_t n, std::vector<raw::Fd>& events);

// Programs `n` MSI routes through the library: IrqFd::NewRoute + IrqFdRoute::SetMsi(BenchMsi())
// each (appended to `routes`), all inside one RouteBatch when `batched`, else one table push per
// SetMsi.
virt::Status ProgramLibraryRoutes(virt::IrqFd& irqfd, uint32_t n, bool batched,
                                  std::vector<std::unique_ptr<virt::IrqFdRoute>>& routes);

}  // namespace virt_bench
