// RunVcpuThreads: per-vCPU setup, the optional start gate, AP threads, the timeout watcher.
#include "virt_run/vcpu_threads.h"

#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "virt_run/exit_status.h"

namespace virt::run {
namespace {

// One vCPU's CPUID: its current table described as vCPU `index` of a package of `count` cores
// (KVM leaves the topology leaves blank), with the --cpu features shown or hidden, set back.
// Without a CPUID control only --cpu is an error: the backend's own table stays.
std::optional<Verdict> SetUpCpuid(Vcpu& vcpu, size_t count, std::span<const CpuFlag> flags) {
  VcpuCpuid* control = vcpu.cpuid();
  if (control == nullptr) {
    if (flags.empty()) return std::nullopt;
    return Verdict(kStatusUsage, "--cpu: vCPU " + std::to_string(vcpu.index()) +
                                     " has no CPUID control (Vcpu::cpuid())");
  }
  auto table = control->GetCpuid();
  if (!table) {
    return Verdict(kStatusInternal, DescribeAt(vcpu, ": GetCpuid: " + table.error().Message()));
  }
  if (Status s = table->SetTopology(vcpu.index(), static_cast<uint32_t>(count)); !s) {
    return Verdict(kStatusInternal, DescribeAt(vcpu, ": CPUID topology: " + s.error().Message()));
  }
  for (const CpuFlag& f : flags) {
    if (Status s = table->SetFeature(f.feature, f.on); !s) {
      return Verdict(kStatusUsage, std::string("--cpu ") + (f.on ? "+" : "-") + f.feature.name +
                                       ": " + s.error().Message());
    }
  }
  if (Status s = control->SetCpuid(*table); !s) {
    const int status =
        s.error().code == ErrorCode::kInvalidArgument ? kStatusUsage : kStatusInternal;
    return Verdict(status, "--cpu: vCPU " + std::to_string(vcpu.index()) + ": " +
                               s.error().Message());
  }
  return std::nullopt;
}

std::optional<Verdict> Setup(Vcpu& vcpu, const VcpuThreadsConfig& config) {
  if (vcpu.index() == 0) {
    if (Status s = EnterMultiboot(vcpu, config.boot); !s) {
      return Verdict(kStatusInternal,
                     DescribeAt(vcpu, ": entering the kernel: " + s.error().Message()));
    }
  }
  return std::nullopt;
}

}  // namespace

void RunVcpuThreads(const VcpuThreadsConfig& config, const VcpuLoopContext& ctx) {
  const auto n = static_cast<ptrdiff_t>(config.vcpus.size());
  // Every vCPU's CPUID before any vCPU runs, so a refused --cpu feature stops the run (status
  // 2) before the guest prints anything.
  for (const std::unique_ptr<Vcpu>& vcpu : config.vcpus) {
    if (auto failed = SetUpCpuid(*vcpu, config.vcpus.size(), config.cpu)) {
      ctx.stop.Stop(std::move(*failed));
      return;
    }
  }
  auto body = [&](Vcpu& vcpu) {
    if (auto failed = Setup(vcpu, config)) ctx.stop.Stop(std::move(*failed));
    if (!ctx.stop.stopped()) RunVcpuLoop(vcpu, ctx);
  };

  std::vector<std::thread> threads;
  threads.reserve(config.vcpus.size());
  auto spawn = [&](auto fn, const std::string& what) {
    try {
      threads.emplace_back(std::move(fn));
      return true;
    } catch (const std::system_error& e) {
      ctx.stop.Stop(Verdict(kStatusInternal, "cannot start the thread of " + what + ": " + e.what()));
      return false;
    }
  };
  if (config.timeout_s > 0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(config.timeout_s);
    spawn(
        [&ctx, deadline, s = config.timeout_s] {
          if (!ctx.stop.WaitUntil(deadline)) {
            ctx.stop.Stop(Verdict(kStatusTimeout, "timeout: the guest still ran after " +
                                                      std::to_string(s) + " s (--timeout)"));
          }
        },
        "the timeout");
  }
  for (ptrdiff_t i = 1; i < n; ++i) {
    if (!spawn([&body, &vcpu = *config.vcpus[i]] { body(vcpu); }, "vCPU " + std::to_string(i))) {
      break;
    }
  }
  if (n > 0) body(*config.vcpus[0]);
  for (std::thread& t : threads) t.join();
}

}  // namespace virt::run
