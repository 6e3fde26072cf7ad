// RunVcpuLoop: one vCPU's run loop: exits to the buses, everything else to a verdict.
#pragma once

#include <cstdint>
#include <string>

#include "virt/vcpu.h"
#include "virt_run/bus.h"
#include "virt_run/exit_stats.h"
#include "virt_run/stop_controller.h"

namespace virt::run {

struct VcpuLoopContext {
  Bus& ports;
  Bus& mmio;
  StopController& stop;
  ExitStats& stats;
};

// Calls vcpu.Run() until the controller has a verdict. IoExit: each of the `count` elements
// of a string OUT goes to the port bus in turn; an IN (string or not) is read element by
// element and answered with CompleteIoIn before the next Run. MmioExit: one bus access, a read
// answered with CompleteMmioRead. CancelledExit: the loop ends if a verdict exists, else runs
// on. Any other exit, a failed hypervisor call or a device error records a verdict naming the
// vCPU and its RIP: ShutdownExit status 6, the rest (HaltExit: no irqchip to wake the vCPU,
// InternalErrorExit, UnknownExit, UnsupportedInstructionExit, errors) status 8.
void RunVcpuLoop(Vcpu& vcpu, const VcpuLoopContext& ctx);

// "vCPU 2 ... at RIP 0x1234" for verdicts (reads RIP with GetRegisters; "RIP unknown" if that
// fails).
std::string DescribeAt(Vcpu& vcpu, const std::string& what);

}  // namespace virt::run
