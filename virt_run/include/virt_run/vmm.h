// RunVmm / Main: virt-run from options to exit status: inputs, backend, partition, devices,
// vCPU threads, verdict.
#pragma once

#include <cstdio>
#include <span>

#include "virt/registry.h"
#include "virt_run/options.h"
#include "virt_run/run_report.h"
#include "virt_run/stop_controller.h"

namespace virt::run {


// Runs the kernel named by `options` on a backend of `registry` and fills `report`. Every
// input is checked before a backend is opened (so bad files give status 2 on any host). The
// partition asks for irqchip and PIT, and goes without the PIT (noted in the report), then
// without the irqchip, when the backend says kUnavailable. vCPUs are created in order on this
// thread; each runs on its own thread, vCPU 0 entered in multiboot state, the others left to
// INIT/SIPI. The run ends with the first verdict (debug exit, shutdown, error, --timeout);
// every vCPU is then cancelled and every thread joined. The console goes to `out`.
Verdict RunVmm(const Options& options, const Registry& registry, std::FILE* out,
               RunReport& report);

// The whole program: parses `args` (argv without argv[0]), runs, prints the reason line on
// `err` (unless the guest exited through the debug port) and, with --json, the report as
// the last line on `out`. Returns the exit status.
int Main(std::span<const char* const> args, const Registry& registry, std::FILE* out,
         std::FILE* err);

}  // namespace virt::run
