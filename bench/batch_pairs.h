// batch_pairs: runs a paired row's baseline and library sides alternately in short batches.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <string>

namespace virt_bench {

// One side of a paired row: runs `batch` operations and returns the wall-clock ns they took
// (the side times only the operations: set-up and checks outside them are not counted), or why
// it failed ("Vcpu::Run: ...").
using BatchSide = std::function<std::expected<double, std::string>(uint32_t batch)>;

// Runs one repetition of the paired row `row` (registered with AddComparison, .paired = true):
// first one untimed batch of each side (warm-up), then every benchmark iteration is one pair, a
// batch of `baseline` and a batch of `virt` back to back, which one goes first swapping from
// pair to pair. Each pair goes to RecordPair(row, ...) in ns per operation (batch time /
// `batch`). Register the benchmark with UseManualTime (its own time is the virt side's per
// operation) and Iterations(pairs per repetition). A failing side fails the benchmark with its
// message; the pairs recorded before stay.
void RunBatchPairs(benchmark::State& state, const std::string& row, uint32_t batch,
                   const BatchSide& baseline, const BatchSide& virt);

// Nanoseconds elapsed on steady_clock since `start`.
inline double NsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace virt_bench
