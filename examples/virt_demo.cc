// virt-demo: a small VMM on the public API: pick a backend, run the tiny guest, take an MSI.
//
//   virt-demo [--backend auto|kvm|mshv|whp] [--json] [--iterations N]
//
// Exit status: 0 when the guest ran and took its MSI, 1 on a failure, 3 when no backend is
// available (the report says why for each).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "guest_driver.h"
#include "virt/backends.h"

namespace {

using virt::guest::GuestDriver;

struct Options {
  std::string backend = "auto";
  bool json = false;
  int iterations = 200;
};

struct Report {
  std::vector<virt::BackendStatus> backends;
  std::optional<std::string> backend;
  std::string guest_output;
  std::optional<uint32_t> mmio_echo;
  bool halted = false;
  bool irqfd = false;
  bool msi_delivered = false;
  uint32_t msi_vector = 0;
  std::optional<int64_t> irqfd_latency_ns;
  std::optional<std::string> error;
};

constexpr uint32_t kMmioValue = 0xc0ffee;
constexpr uint8_t kVector = 0x40;

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Step 1: a partition without irqchip, so the guest's HLT comes back to us.
virt::Status RunHelloGuest(virt::Hypervisor& hv, Report& report) {
  auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = false});
  if (!partition) return partition.error();
  auto driver = GuestDriver::Create(**partition, virt::guest::kModeHalt, kMmioValue);
  if (!driver) return driver.error();
  auto exit = (*driver)->RunToEvent();
  if (!exit) return exit.error();
  report.guest_output = (*driver)->hello();
  report.mmio_echo = (*driver)->echoed();
  report.halted = std::holds_alternative<virt::HaltExit>(*exit);
  if (!report.halted) {
    return virt::Error::Make(virt::ErrorCode::kFailedPrecondition, "virt-demo",
                             "expected the guest to halt, got " + virt::guest::Describe(*exit));
  }
  return virt::Ok();
}

// Step 2: a partition with irqchip; an irqfd route (or RequestMsi) delivers kVector. The
// latency is signal -> guest handler -> its OUT seen here, median over the iterations.
virt::Status RunMsiGuest(virt::Hypervisor& hv, const Options& opt, Report& report) {
  auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return partition.error();
  auto driver = GuestDriver::Create(**partition, virt::guest::kModeInterrupts, kMmioValue);
  if (!driver) return driver.error();
  auto ready = (*driver)->RunToEvent();
  if (!ready) return ready.error();

  virt::IrqFd* irqfd = (*partition)->irqfd();
  report.irqfd = irqfd != nullptr;
  std::unique_ptr<virt::IrqFdRoute> route;
  if (irqfd != nullptr) {
    auto r = irqfd->NewRoute();
    if (!r) return r.error();
    route = std::move(*r);
    if (virt::Status s = route->SetMsi(virt::MsiMessage::Fixed(0, kVector)); !s) return s;
  }
  std::vector<int64_t> samples;
  samples.reserve(static_cast<size_t>(opt.iterations));
  for (int i = 0; i < opt.iterations; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (route) {
      if (virt::Status s = route->event().Signal(); !s) return s;
    } else if (auto d = (*partition)->RequestMsi(virt::MsiMessage::Fixed(0, kVector)); !d) {
      return d.error();
    }
    auto vector = (*driver)->RunToVector();
    const auto t1 = std::chrono::steady_clock::now();
    if (!vector) return vector.error();
    report.msi_vector = *vector;
    report.msi_delivered = *vector == kVector;
    if (!report.msi_delivered) break;
    samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  if (!samples.empty() && route) {
    std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
    report.irqfd_latency_ns = samples[samples.size() / 2];
  }
  return virt::Ok();
}

void PrintText(const Report& r) {
  std::printf("backends:\n");
  for (const auto& b : r.backends) {
    std::printf("  %-5s %s%s%s\n", b.name.c_str(), virt::ToString(b.availability.why),
                b.availability.reason.empty() ? "" : ": ", b.availability.reason.c_str());
  }
  if (!r.backend) {
    std::printf("no backend to run on: %s\n", r.error ? r.error->c_str() : "");
    return;
  }
  std::printf("using backend: %s\n", r.backend->c_str());
  std::printf("guest said: %s", r.guest_output.c_str());
  if (r.mmio_echo) std::printf("guest echoed MMIO value: 0x%x\n", *r.mmio_echo);
  std::printf("guest halted: %s\n", r.halted ? "yes" : "no");
  std::printf("MSI via %s: %s (vector 0x%x)\n", r.irqfd ? "irqfd route" : "RequestMsi",
              r.msi_delivered ? "delivered" : "NOT delivered", r.msi_vector);
  if (r.irqfd_latency_ns) {
    std::printf("irqfd latency (signal -> guest handler -> exit, median): %lld ns\n",
                static_cast<long long>(*r.irqfd_latency_ns));
  }
  if (r.error) std::printf("error: %s\n", r.error->c_str());
}

void PrintJson(const Report& r) {
  std::string out = "{\"backend\":" + (r.backend ? JsonString(*r.backend) : "null");
  out += ",\"backends\":{";
  for (size_t i = 0; i < r.backends.size(); ++i) {
    const auto& b = r.backends[i];
    out += (i ? "," : "") + JsonString(b.name) + ":{\"available\":" +
           (b.availability.available() ? "true" : "false") +
           ",\"status\":" + JsonString(virt::ToString(b.availability.why)) +
           ",\"reason\":" + JsonString(b.availability.reason) + "}";
  }
  out += "},\"guest_output\":" + JsonString(r.guest_output);
  out += ",\"mmio_echo\":" + (r.mmio_echo ? std::to_string(*r.mmio_echo) : "null");
  out += ",\"halted\":" + std::string(r.halted ? "true" : "false");
  out += ",\"irqfd\":" + std::string(r.irqfd ? "true" : "false");
  out += ",\"msi_delivered\":" + std::string(r.msi_delivered ? "true" : "false");
  out += ",\"msi_vector\":" + std::to_string(r.msi_vector);
  out += ",\"irqfd_latency_ns\":" +
         (r.irqfd_latency_ns ? std::to_string(*r.irqfd_latency_ns) : "null");
  out += ",\"error\":" + (r.error ? JsonString(*r.error) : "null") + "}";
  std::puts(out.c_str());
}

bool ParseArgs(int argc, char** argv, Options& opt) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      opt.json = true;
    } else if (arg == "--backend" && i + 1 < argc) {
      opt.backend = argv[++i];
    } else if (arg.starts_with("--backend=")) {
      opt.backend = arg.substr(10);
    } else if (arg == "--iterations" && i + 1 < argc) {
      opt.iterations = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--backend auto|kvm|mshv|whp] [--json] [--iterations N]\n",
                   argv[0]);
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!ParseArgs(argc, argv, opt)) return 2;

  virt::Registry registry = virt::DefaultRegistry();
  Report report;
  report.backends = registry.Probe();
  int status = 0;
  auto hv = registry.Open(opt.backend);
  if (!hv) {
    report.error = hv.error().Message();
    status = hv.error().code == virt::ErrorCode::kUnavailable ? 3 : 1;
  } else {
    report.backend = std::string((*hv)->name());
    virt::Status ran = RunHelloGuest(**hv, report);
    if (ran) ran = RunMsiGuest(**hv, opt, report);
    if (!ran) report.error = ran.error().Message();
    status = ran && report.msi_delivered ? 0 : 1;
  }
  if (opt.json) {
    PrintJson(report);
  } else {
    PrintText(report);
  }
  return status;
}
