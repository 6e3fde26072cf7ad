// vmm_boot: virt-run against QEMU -kernel on the same kernels: exec to the first guest
// instruction, exec to exit, and AP bring-up (first SIPI to the last AP online) on 4 vCPUs.
//
// Each iteration is one pair: QEMU boots the kernel, then virt-run boots the same file with the
// same vCPUs, RAM and arguments, both started by RunTimed (posix_spawn, stdout on a pipe). The
// pairs go to paired report rows (RecordPair), whose ratio is the median of the per-pair
// ratios, so the host's drift between pairs cancels within each ratio. The first pair of each
// benchmark in a process is run untimed (page cache, dynamic loader). Every run must end with
// the kernel's PASS (exit status 1 on both sides) and its expected output, or the benchmark
// fails with what the VMM printed.
//
//   first_out    bench/kernels/first_out.flat: its first instruction writes a byte to COM1, so
//                the byte's arrival is exec -> first guest instruction; then exec -> exit.
//   console      virt_run/kernels/console.flat code=0: a whole small test kernel, exec -> exit.
//   ap_bringup   bench/kernels/ap_bringup.flat on 4 vCPUs: the kernel's own TSC count from the
//                first SIPI to the last AP online, in ns at the guest TSC rate
//                (KVM_GET_TSC_KHZ); and exec -> exit.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <expected>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bench_common.h"
#include "guest_tsc.h"
#include "process_timing.h"
#include "report.h"
#include "vmm_commands.h"

namespace virt_bench {
namespace {

constexpr std::chrono::seconds kRunBound{300};  // QEMU's firmware takes 10-30 s on kvm_pvm
constexpr int kPassStatus = 1;                  // (0 << 1) | 1: the guest wrote 0 to port 0xf4

// Which kernel a benchmark boots, what its output must show, and the rows it feeds.
struct BootCase {
  const char* benchmark;
  bool bench_kernel;  // bench/kernels (else virt_run/kernels)
  const char* file;
  uint32_t smp;
  const char* append;
  const char* must_print;  // a text both VMMs' output must contain
  bool exact;              // ... and nothing else
  const char* first_row;   // exec -> first stdout byte, or null
  const char* exit_row;    // exec -> exit
  const char* ap_row;      // the kernel's AP bring-up figure, or null
};

// What one run measured, in ns.
struct Measured {
  double first_byte_ns = 0;
  double exit_ns = 0;
  double ap_ns = 0;
};

// The end of a VMM's output on one line, for a failure message (and a report cell).
std::string Tail(const std::string& text) {
  std::string tail = text.size() <= 400 ? text : "..." + text.substr(text.size() - 400);
  std::string line;
  for (char ch : tail) {
    if (ch == '\n') {
      line += " \\n ";
    } else if (ch != '\r') {
      line += ch;
    }
  }
  return line;
}

// The ap_bringup kernel's "first=N last=M" line: M TSC cycles, or nullopt.
std::optional<unsigned long> LastApCycles(const std::string& out) {
  const size_t at = out.find("INFO: ap_bringup:");
  if (at == std::string::npos) return std::nullopt;
  const size_t last = out.find("last=", at);
  if (last == std::string::npos) return std::nullopt;
  unsigned long cycles = 0;
  if (std::sscanf(out.c_str() + last, "last=%lu", &cycles) != 1) return std::nullopt;
  return cycles;
}

// Runs one side and checks its verdict and output.
std::expected<Measured, std::string> RunSide(const char* side, const std::vector<std::string>& argv,
                                             const BootCase& c, double tsc_khz) {
  auto run = RunTimed(argv, kRunBound);
  if (!run) return std::unexpected(std::string(side) + ": " + run.error());
  const std::string seen = "; stdout: " + Tail(run->out) + "; stderr: " + Tail(run->err);
  if (run->status != kPassStatus) {
    return std::unexpected(std::string(side) + " exited with " + std::to_string(run->status) +
                           " (want 1, the guest's PASS)" + seen);
  }
  const bool printed =
      c.exact ? run->out == c.must_print : run->out.find(c.must_print) != std::string::npos;
  if (!printed || !run->first_byte_ns) {
    return std::unexpected(std::string(side) + ": the output is not " +
                           (c.exact ? "exactly" : "showing") + " the expected text" + seen);
  }
  Measured m{*run->first_byte_ns, run->exit_ns, 0};
  if (c.ap_row != nullptr) {
    const auto cycles = LastApCycles(run->out);
    if (!cycles) return std::unexpected(std::string(side) + ": no ap_bringup line" + seen);
    m.ap_ns = static_cast<double>(*cycles) / tsc_khz * 1e6;
    // The guest's interval lies inside the process's life: a wrong TSC rate would show here.
    if (m.ap_ns >= m.exit_ns) {
      return std::unexpected(std::string(side) + ": AP bring-up of " + std::to_string(m.ap_ns) +
                             " ns at " + std::to_string(tsc_khz) + " kHz exceeds the run (" +
                             std::to_string(m.exit_ns) + " ns): wrong TSC rate?");
    }
  }
  return m;
}

// Why this case cannot run here (empty: it can), and its two command lines.
std::string Prepare(const BootCase& c, std::vector<std::string>& qemu,
                    std::vector<std::string>& virt_run) {
  if (const std::string& why = KvmUnavailableReason(); !why.empty()) return why;
  auto qemu_path = QemuPath();
  if (!qemu_path) return qemu_path.error();
  auto virt_run_path = VirtRunPath();
  if (!virt_run_path) return virt_run_path.error();
  auto kernel = c.bench_kernel ? BenchKernelPath(c.file) : TestKernelPath(c.file);
  if (!kernel) return kernel.error();
  const BootSpec spec{.kernel = *kernel, .smp = c.smp, .append = c.append};
  qemu = QemuCommand(*qemu_path, spec);
  virt_run = VirtRunCommand(*virt_run_path, spec);
  return "";
}

void VmmBoot(benchmark::State& state, const BootCase& c) {
  std::vector<std::string> qemu, virt_run;
  if (const std::string why = Prepare(c, qemu, virt_run); !why.empty()) {
    state.SkipWithError(why.c_str());
    return;
  }
  double tsc_khz = 0;
  if (c.ap_row != nullptr) {
    auto khz = GuestTscKhz();
    if (!khz) return Fail(state, "guest TSC rate", khz.error());
    tsc_khz = *khz;
    state.counters["tsc_khz"] = tsc_khz;
    state.counters["host_tsc_khz"] = HostTscKhz();
  }
  static std::set<std::string> warmed;
  if (warmed.insert(c.benchmark).second) {
    if (auto q = RunSide("QEMU", qemu, c, tsc_khz); !q) return Fail(state, "warm-up", q.error());
    if (auto v = RunSide("virt-run", virt_run, c, tsc_khz); !v) {
      return Fail(state, "warm-up", v.error());
    }
  }

  double qemu_total = 0;
  std::vector<double> ratios;
  for (auto _ : state) {
    auto q = RunSide("QEMU", qemu, c, tsc_khz);
    if (!q) {
      Fail(state, "pair", q.error());
      break;
    }
    auto v = RunSide("virt-run", virt_run, c, tsc_khz);
    if (!v) {
      Fail(state, "pair", v.error());
      break;
    }
    // The benchmark's own time is virt-run's headline figure; QEMU's is a counter.
    const double qemu_ns = c.ap_row ? q->ap_ns : c.first_row ? q->first_byte_ns : q->exit_ns;
    const double virt_ns = c.ap_row ? v->ap_ns : c.first_row ? v->first_byte_ns : v->exit_ns;
    state.SetIterationTime(virt_ns / 1e9);
    qemu_total += qemu_ns;
    ratios.push_back(virt_ns / qemu_ns);
    if (c.first_row) RecordPair(c.first_row, {q->first_byte_ns, v->first_byte_ns});
    RecordPair(c.exit_row, {q->exit_ns, v->exit_ns});
    if (c.ap_row) RecordPair(c.ap_row, {q->ap_ns, v->ap_ns});
  }
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    state.counters["qemu_ns"] = qemu_total / static_cast<double>(ratios.size());
    state.counters["ratio"] = ratios[ratios.size() / 2];
  }
}

const BootCase kFirstOut{.benchmark = "vmm_boot/first_out",
                         .bench_kernel = true,
                         .file = "first_out.flat",
                         .smp = 1,
                         .append = "",
                         .must_print = "\n",
                         .exact = true,
                         .first_row = "vmm_exec_to_first_instruction",
                         .exit_row = "vmm_exec_to_exit/first_out",
                         .ap_row = nullptr};
const BootCase kConsole{.benchmark = "vmm_boot/console",
                        .bench_kernel = false,
                        .file = "console.flat",
                        .smp = 1,
                        .append = "code=0",
                        .must_print = "SUMMARY: 1 tests",
                        .exact = false,
                        .first_row = nullptr,
                        .exit_row = "vmm_exec_to_exit/console",
                        .ap_row = nullptr};
const BootCase kApBringup{.benchmark = "vmm_boot/ap_bringup_smp4",
                          .bench_kernel = true,
                          .file = "ap_bringup.flat",
                          .smp = 4,
                          .append = "cpus=4",
                          .must_print = "PASS: 4 of 4 CPUs online",
                          .exact = false,
                          .first_row = nullptr,
                          .exit_row = "vmm_exec_to_exit/ap_bringup_smp4",
                          .ap_row = "vmm_ap_bringup/4"};

[[maybe_unused]] const bool kRegistered = [] {
  for (const BootCase* c : {&kFirstOut, &kConsole, &kApBringup}) {
    benchmark::RegisterBenchmark(c->benchmark, [c](benchmark::State& s) { VmmBoot(s, *c); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  // Paired rows, baseline = QEMU, virt = virt-run; each benchmark feeds its case's rows.
  auto paired = [](const char* row, const BootCase& c, Goal goal) {
    AddComparison({row, "", c.benchmark, goal, true});
  };
  paired(kFirstOut.first_row, kFirstOut, Goal::RatioAtMost(0.10));
  paired(kFirstOut.exit_row, kFirstOut, Goal::None());
  paired(kConsole.exit_row, kConsole, Goal::RatioAtMost(0.10));
  paired(kApBringup.exit_row, kApBringup, Goal::None());
  paired(kApBringup.ap_row, kApBringup, Goal::None());
  return true;
}();

}  // namespace
}  // namespace virt_bench
