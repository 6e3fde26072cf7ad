// ExitStats: how many exits of each kind the vCPUs took, and when the first one came.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <variant>

#include "virt/vcpu_exit.h"

namespace virt::run {

// The process's start as virt-run sees it: the static initialisation of the program (after
// exec and dynamic linking, before main).
std::chrono::steady_clock::time_point ProcessStart();

// Thread-safe counters, one per VcpuExit alternative (named by virt::ExitName).
class ExitStats {
 public:
  static constexpr size_t kKinds = std::variant_size_v<VcpuExit>;

  void Count(const VcpuExit& exit) {
    counts_[exit.index()].fetch_add(1, std::memory_order_relaxed);
    if (first_exit_ns_.load(std::memory_order_relaxed) < 0) {
      const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now() - ProcessStart())
                             .count();
      int64_t unset = -1;
      first_exit_ns_.compare_exchange_strong(unset, ns);
    }
  }

  uint64_t count(size_t kind) const { return counts_[kind].load(std::memory_order_relaxed); }
  // Nanoseconds from ProcessStart() to the first exit of any vCPU; -1 before it.
  int64_t first_exit_ns() const { return first_exit_ns_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<uint64_t>, kKinds> counts_{};
  std::atomic<int64_t> first_exit_ns_{-1};
};

}  // namespace virt::run
