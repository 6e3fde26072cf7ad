// RunReport: what --json prints at the end of a run, one object on one line.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "virt_run/bus.h"
#include "virt_run/exit_stats.h"

namespace virt::run {

// The fields, in output order:
//   backend          "kvm" | "mshv" | "whp", null when none was opened
//   vcpus            --smp
//   memory_mib       -m
//   irqchip, pit     whether the partition has the in-kernel irqchip / PIT
//   pit_note         why there is no PIT (the backend's error), or null
//   irq_lines        whether the IRQ-line ports and the level device are present
//   exits            {io, mmio, halt, shutdown, cancelled, internal_error, unknown,
//                     unsupported_instruction}: exits taken by all vCPUs, by kind
//   unclaimed        {io_read, io_write, mmio_read, mmio_write}: accesses no device claimed
//                    (reads answered all-ones, writes dropped; a string I/O element each)
//   console_bytes    bytes the guest wrote to COM1
//   first_exit_ns    process start (static initialisation) to the first exit of any vCPU,
//                    or null when no vCPU ran
//   total_ns         process start to the end of the run
//   debug_exit_code  the value the guest wrote to port 0xf4, or null
//   status           the process exit status
//   reason           the verdict in one line ("the guest wrote 0 to the debug-exit port
//                    0xf4", "vCPU 0 shut down (triple fault) at RIP 0x...", a usage error ...)
struct RunReport {
  std::optional<std::string> backend;
  uint32_t vcpus = 0;
  uint64_t memory_mib = 0;
  bool irqchip = false;
  bool pit = false;
  std::optional<std::string> pit_note;
  bool irq_lines = false;
  std::array<uint64_t, ExitStats::kKinds> exits{};
  Bus::Counters ports{};
  Bus::Counters mmio{};
  uint64_t console_bytes = 0;
  int64_t first_exit_ns = -1;
  int64_t total_ns = 0;
  std::optional<uint32_t> debug_exit_code;
  int status = 0;
  std::string reason;
  bool console_at_line_start = true;  // not printed: whether the report needs a '\n' first

  // The object, without a trailing newline.
  std::string ToJson() const;
};

// A JSON string literal for `s` (quotes, backslashes and control bytes escaped; other bytes as
// they are).
std::string JsonString(const std::string& s);

}  // namespace virt::run
