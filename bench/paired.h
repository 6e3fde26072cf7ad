// paired: runs a baseline and a library side alternately in short batches, one report pair each.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <string>

namespace virt_bench {

// What one batch of a side took, in ns of wall-clock time, or why it failed ("Vcpu::Run: ...").
using BatchTime = std::expected<double, std::string>;

// One side of a paired row: runs `iterations` of its operation and returns the time they took.
// A side times only what it measures: set-up and teardown (a fresh VM, 2048 routes armed)
// happen in the call but outside the time it returns.
using PairedSide = std::function<BatchTime(uint32_t iterations)>;

// How a paired row alternates its sides.
struct PairedPlan {
  uint32_t batch = 1;   // iterations per side per pair: short, so the host drifts little
                        // between the two halves of a pair
  bool warm_up = true;  // one untimed batch of each side before the first pair
};

// Runs one repetition of the paired row `row` (a Comparison registered with .paired = true):
// each benchmark iteration is one pair, a batch of `baseline` and a batch of `virt` back to
// back, the order swapped every other pair so neither side always runs first. Each two
// consecutive pairs of a repetition (one of each order; the units overlap: pairs 1+2, 2+3, ...)
// go to RecordPair(row, ...) as one unit, the means of their sides in ns per operation (batch
// time / plan.batch); a repetition of a single pair records that pair. The benchmark's own
// time (register it with UseManualTime) is the virt side's, and counters give the baseline
// side's time per operation and this repetition's median unit ratio. A failing side fails the
// benchmark with its message and ends the repetition; the pairs recorded until then stay.
void RunPaired(benchmark::State& state, const std::string& row, const PairedPlan& plan,
               const PairedSide& baseline, const PairedSide& virt);

// A stopwatch on steady_clock for sides that time part of what they do.
class Stopwatch {
 public:
  void Start() { start_ = std::chrono::steady_clock::now(); }
  void Stop() { total_ns_ += Since(start_); }
  double total_ns() const { return total_ns_; }

 private:
  static double Since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t)
        .count();
  }
  std::chrono::steady_clock::time_point start_;
  double total_ns_ = 0;
};

// Nanoseconds elapsed on steady_clock since `start`, for sides that time a part of each batch.
inline double NsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
      .count();
}

// A side for steady-state loops: times `iterations` calls of `once(why)`, which returns true
// on success and false with the failure's message in `why` (the loop stops there).
template <typename Once>
BatchTime TimeLoop(uint32_t iterations, Once&& once) {
  std::string why;
  Stopwatch watch;
  watch.Start();
  for (uint32_t i = 0; i < iterations; ++i) {
    if (!once(why)) return std::unexpected(std::move(why));
  }
  watch.Stop();
  return watch.total_ns();
}

}  // namespace virt_bench
