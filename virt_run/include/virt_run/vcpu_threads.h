// RunVcpuThreads: every vCPU on its own thread (vCPU 0 on the caller's), the --cpu setup, the
// boot vCPU's entry state and the --timeout watch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "virt/vcpu.h"
#include "virt_run/boot_cpu.h"
#include "virt_run/options.h"
#include "virt_run/vcpu_loop.h"

namespace virt::run {

struct VcpuThreadsConfig {
  std::span<const std::unique_ptr<Vcpu>> vcpus;  // index i at position i
  BootCpuState boot;                             // vCPU 0's entry state
  std::span<const CpuFlag> cpu;                  // --cpu, applied to every vCPU
  uint64_t timeout_s = 0;                        // 0: no timeout
};

// Runs the machine until ctx.stop has a verdict, then returns with every thread joined.
//
// First, on the calling thread and before any vCPU runs, every vCPU's CPUID (where the backend
// has Vcpu::cpuid()): Cpuid::SetTopology(index, vCPU count), then the --cpu features, then
// SetCpuid; a refused feature stops the run (status 2) before the guest prints anything. Then
// vCPU 0 gets the multiboot entry state on its thread; the APs get no registers (INIT/SIPI
// starts them). vCPU 0 runs on the calling thread, so
// the first guest instruction does not wait for a thread to be scheduled. The stop hook must
// cancel every vCPU (the controller's SetOnStop): it ends APs blocked waiting for a SIPI.
// A thread that cannot be started gives status 8.
void RunVcpuThreads(const VcpuThreadsConfig& config, const VcpuLoopContext& ctx);

}  // namespace virt::run
