// RunVmm and Main: the run from checked inputs to a verdict, and the program around it.
#include "virt_run/vmm.h"

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "virt/hypervisor.h"
#include "virt_run/boot_cpu.h"
#include "virt_run/console.h"
#include "virt_run/exit_status.h"
#include "virt_run/guest_ram.h"
#include "virt_run/platform.h"
#include "virt_run/prepared_guest.h"
#include "virt_run/vcpu_threads.h"

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
  RunVcpuThreads({vcpus, guest->cpu, options.cpu, options.timeout_s},
                 {(*platform)->ports(), (*platform)->mmio(), stop, stats});
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
