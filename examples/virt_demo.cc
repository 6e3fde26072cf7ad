// virt-demo: a small VMM on the public API: pick a backend, run the tiny guest, take an MSI,
// then run a doorbell device (guest write -> device thread -> MSI) with no VMM exit.
//
//   virt-demo [--backend auto|kvm|mshv|whp] [--json] [--iterations N]
//
// Exit status: 0 when the guest ran, took its MSI and every doorbell ring got its MSI, 1 on a
// failure, 3 when no backend is available (the report says why for each).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "doorbell_device.h"
#include "guest_driver.h"
#include "virt/backends.h"
#include "virt/user_mode_doorbells.h"

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
  // The doorbell device (step 3): "kernel" or "user-mode" doorbells, rings the device saw,
  // interrupts the guest took, exits the vCPU made meanwhile, mean round trip.
  std::optional<std::string> doorbell;
  uint64_t doorbell_rings = 0;
  uint32_t doorbell_interrupts = 0;
  uint64_t doorbell_exits = 0;
  std::optional<int64_t> doorbell_round_trip_ns;
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

// Step 3: a doorbell device. The guest rings a doorbell (an MMIO write) `iterations` times and
// waits for an interrupt after each ring; a device thread waits on the doorbell's event and
// answers every ring with an MSI through an irqfd route. With in-hypervisor doorbells the loop
// makes no VMM exit at all; the user-mode fallback takes one exit per ring.
virt::Status RunDoorbellGuest(virt::Hypervisor& hv, const Options& opt, Report& report) {
  auto partition = hv.CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return partition.error();
  virt::IrqFd* irqfd = (*partition)->irqfd();
  if (irqfd == nullptr) return virt::Ok();  // nothing to answer with: skip the step
  std::unique_ptr<virt::UserModeDoorbells> user_mode;
  virt::Doorbells* doorbells = (*partition)->doorbells();
  if (doorbells == nullptr) {
    user_mode = virt::UserModeDoorbells::Create();
    doorbells = user_mode.get();
  }
  report.doorbell = user_mode ? "user-mode" : "kernel";
  auto bell = doorbells->Register(
      {virt::DoorbellSpace::kMmio, virt::guest::kDoorbellAddress, 4, std::nullopt});
  if (!bell) return bell.error();
  auto route = irqfd->NewRoute();
  if (!route) return route.error();
  if (virt::Status s = (*route)->SetMsi(virt::MsiMessage::Fixed(0, kVector)); !s) return s;
  auto driver = GuestDriver::Create(**partition, virt::guest::kModeDoorbell, kMmioValue);
  if (!driver) return driver.error();
  auto device = virt::guest::DoorbellDevice::Start((*bell)->event(), (*route)->event());
  if (!device) return device.error();
  const auto t0 = std::chrono::steady_clock::now();
  auto loop = virt::guest::RunDoorbellLoop(**driver, static_cast<uint32_t>(opt.iterations),
                                           user_mode.get());
  const auto t1 = std::chrono::steady_clock::now();
  (*device)->Stop();
  if (!loop) return loop.error();
  report.doorbell_rings = (*device)->rings();
  report.doorbell_interrupts = loop->guest_interrupts;
  report.doorbell_exits = loop->exits;
  report.doorbell_round_trip_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count() / opt.iterations;
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
  if (r.doorbell) {
    std::printf("doorbell device (%s doorbells): %llu rings, %u interrupts, %llu VMM exits",
                r.doorbell->c_str(), static_cast<unsigned long long>(r.doorbell_rings),
                r.doorbell_interrupts, static_cast<unsigned long long>(r.doorbell_exits));
    if (r.doorbell_round_trip_ns) {
      std::printf(", %lld ns per ring -> MSI round trip",
                  static_cast<long long>(*r.doorbell_round_trip_ns));
    }
    std::printf("\n");
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
  out += ",\"doorbell\":" + (r.doorbell ? JsonString(*r.doorbell) : "null");
  out += ",\"doorbell_rings\":" + std::to_string(r.doorbell_rings);
  out += ",\"doorbell_interrupts\":" + std::to_string(r.doorbell_interrupts);
  out += ",\"doorbell_exits\":" + std::to_string(r.doorbell_exits);
  out += ",\"doorbell_round_trip_ns\":" +
         (r.doorbell_round_trip_ns ? std::to_string(*r.doorbell_round_trip_ns) : "null");
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
    if (ran && report.msi_delivered) ran = RunDoorbellGuest(**hv, opt, report);
    if (!ran) report.error = ran.error().Message();
    const bool doorbell_ok =
        !report.doorbell || (report.doorbell_rings == static_cast<uint64_t>(opt.iterations) &&
                             report.doorbell_interrupts == static_cast<uint32_t>(opt.iterations));
    status = ran && report.msi_delivered && doorbell_ok ? 0 : 1;
  }
  if (opt.json) {
    PrintJson(report);
  } else {
    PrintText(report);
  }
  return status;
}
