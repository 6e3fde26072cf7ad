// RunVmm and Main: the run from checked inputs to a verdict, and the program around it.
#include "virt_run/vmm.h"

#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "virt/hypervisor.h"
#include "virt_run/boot_cpu.h"
#include "virt_run/console.h"
#include "virt_run/exit_status.h"
#include "virt_run/guest_ram.h"
#include "virt_run/platform.h"
#include "virt_run/prepared_guest.h"
#include "virt_run/vcpu_loop.h"

namespace virt::run {
namespace {

Verdict Internal(std::string reason) { return Verdict{kStatusInternal, std::move(reason)}; }

// irqchip + PIT, then without the PIT, then without the irqchip, as far as the backend says
// kUnavailable.
Result<std::unique_ptr<Partition>> CreateBestPartition(Hypervisor& hv, uint32_t vcpus,
                                                       RunReport& report) {
  PartitionConfig config{.vcpu_count = vcpus, .irqchip = true, .pit = true};
  auto partition = hv.CreatePartition(config);
  if (!partition && partition.error().code == ErrorCode::kUnavailable) {
    report.pit_note = partition.error().Message();
    config.pit = false;
    partition = hv.CreatePartition(config);
    if (!partition && partition.error().code == ErrorCode::kUnavailable) {
      config.irqchip = false;
      partition = hv.CreatePartition(config);
    }
  }
  if (partition) {
    report.irqchip = config.irqchip;
    report.pit = config.pit;
  }
  return partition;
}

// --cpu on one vCPU: its current table with the features shown or hidden, set back.
std::optional<Verdict> ApplyCpuFlags(Vcpu& vcpu, std::span<const CpuFlag> flags) {
  VcpuCpuid* control = vcpu.cpuid();
  auto table = control->GetCpuid();
  if (!table) return Internal(DescribeAt(vcpu, ": GetCpuid: " + table.error().Message()));
  for (const CpuFlag& f : flags) {
    if (Status s = table->SetFeature(f.feature, f.on); !s) {
      return Verdict{kStatusUsage, std::string("--cpu ") + (f.on ? "+" : "-") + f.feature.name +
                                       ": " + s.error().Message()};
    }
  }
  if (Status s = control->SetCpuid(*table); !s) {
    const int status =
        s.error().code == ErrorCode::kInvalidArgument ? kStatusUsage : kStatusInternal;
    return Verdict{status, "--cpu: vCPU " + std::to_string(vcpu.index()) + ": " +
                               s.error().Message()};
  }
  return std::nullopt;
}

}  // namespace

Verdict RunVmm(const Options& options, const Registry& registry, std::FILE* out,
               RunReport& report) {
  report.vcpus = options.smp;
  report.memory_mib = options.memory_mib;

  // Inputs first: a bad file is status 2 on any host, hypervisor or not.
  auto guest = PrepareGuest(options);
  if (!guest) return Verdict{kStatusUsage, guest.error()};
  auto ram = GuestRam::Allocate(guest->layout);
  if (!ram) return Internal("guest RAM: " + ram.error().Message());
  LoadGuest(*guest, ram->low());

  auto hv = registry.Open(options.backend);
  if (!hv) {
    const ErrorCode code = hv.error().code;
    if (code == ErrorCode::kNotFound) return Verdict{kStatusUsage, hv.error().Message()};
    if (code == ErrorCode::kUnavailable) {
      return Verdict{kStatusNoBackend, "no usable backend: " + hv.error().Message()};
    }
    return Internal(hv.error().Message());
  }
  report.backend = std::string((*hv)->name());

  auto partition = CreateBestPartition(**hv, options.smp, report);
  if (!partition) {
    if (partition.error().code == ErrorCode::kInvalidArgument) {
      return Verdict{kStatusUsage,
                     "--smp " + std::to_string(options.smp) + ": " + partition.error().Message()};
    }
    return Internal("CreatePartition: " + partition.error().Message());
  }
  for (const MemoryRegion& region : ram->Regions()) {
    if (Status s = (*partition)->MapMemory(region); !s) {
      return Internal("MapMemory: " + s.error().Message());
    }
  }

  Console console(out);
  StopController stop;
  auto platform = Platform::Create({static_cast<uint16_t>(options.smp), guest->layout.ram_bytes,
                                    (*partition)->irq_lines()},
                                   console, stop);
  if (!platform) return Internal("devices: " + platform.error().Message());
  report.irq_lines = (*platform)->has_irq_lines();

  std::vector<std::unique_ptr<Vcpu>> vcpus;
  for (uint32_t i = 0; i < options.smp; ++i) {
    auto vcpu = (*partition)->CreateVcpu(i);
    if (!vcpu) return Internal("CreateVcpu(" + std::to_string(i) + "): " + vcpu.error().Message());
    if (!options.cpu.empty() && (*vcpu)->cpuid() == nullptr) {
      return Verdict{kStatusUsage, "--cpu: the " + *report.backend +
                                       " backend cannot set a vCPU's CPUID (no Vcpu::cpuid())"};
    }
    vcpus.push_back(std::move(*vcpu));
  }

  stop.SetOnStop([&vcpus] {
    for (auto& v : vcpus) v->Cancel();
  });
  ExitStats stats;
  const VcpuLoopContext ctx{(*platform)->ports(), (*platform)->mmio(), stop, stats};
  // Every thread sets its vCPU up (CPUID, vCPU 0's entry state: calls that belong on the
  // vCPU's own thread), then all start together, or none if a setup failed.
  std::latch ready(options.smp);
  std::vector<std::thread> threads;
  threads.reserve(options.smp);
  for (uint32_t i = 0; i < options.smp; ++i) {
    try {
      threads.emplace_back([&, i] {
        Vcpu& vcpu = *vcpus[i];
        std::optional<Verdict> failed;
        if (!options.cpu.empty()) failed = ApplyCpuFlags(vcpu, options.cpu);
        if (!failed && i == 0) {
          if (Status s = EnterMultiboot(vcpu, guest->cpu); !s) {
            failed = Internal(DescribeAt(vcpu, ": entering the kernel: " + s.error().Message()));
          }
        }
        if (failed) stop.Stop(std::move(*failed));
        ready.arrive_and_wait();
        if (!stop.stopped()) RunVcpuLoop(vcpu, ctx);
      });
    } catch (const std::system_error& e) {
      stop.Stop(Internal("cannot start the thread of vCPU " + std::to_string(i) + ": " + e.what()));
      ready.count_down(options.smp - i);
      break;
    }
  }

  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (options.timeout_s > 0) {
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_s);
  }
  if (!stop.WaitUntil(deadline)) {
    stop.Stop(Verdict{kStatusTimeout, "timeout: the guest still ran after " +
                                          std::to_string(options.timeout_s) + " s (--timeout)"});
  }
  for (std::thread& t : threads) t.join();
  (*platform)->Stop();
  console.Flush();

  for (size_t k = 0; k < ExitStats::kKinds; ++k) report.exits[k] = stats.count(k);
  report.ports = (*platform)->ports().counters();
  report.mmio = (*platform)->mmio().counters();
  report.console_bytes = console.bytes();
  report.console_at_line_start = console.at_line_start();
  report.first_exit_ns = stats.first_exit_ns();
  return stop.verdict();
}

int Main(std::span<const char* const> args, const Registry& registry, std::FILE* out,
         std::FILE* err) {
  auto options = ParseOptions(args);
  if (!options) {
    std::fprintf(err, "virt-run: %s\n%s", options.error().c_str(), Usage().c_str());
    return kStatusUsage;
  }
  if (options->help) {
    std::fputs(Usage().c_str(), out);
    return 0;
  }
  RunReport report;
  const Verdict verdict = RunVmm(*options, registry, out, report);
  report.status = verdict.status;
  report.reason = verdict.reason;
  report.debug_exit_code = verdict.debug_exit_code;
  report.total_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - ProcessStart())
                        .count();
  if (verdict.print) std::fprintf(err, "virt-run: %s\n", verdict.reason.c_str());
  if (options->json) {
    if (!report.console_at_line_start) std::fputc('\n', out);
    std::fprintf(out, "%s\n", report.ToJson().c_str());
  }
  std::fflush(out);
  return verdict.status;
}

}  // namespace virt::run
