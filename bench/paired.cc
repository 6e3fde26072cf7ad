// paired: the alternation of a paired row's two sides and the per-pair records.
#include "paired.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "bench_common.h"
#include "report.h"

namespace virt_bench {

void RunPaired(benchmark::State& state, const std::string& row, const PairedPlan& plan,
               const PairedSide& baseline, const PairedSide& virt) {
  const uint32_t batch = std::max<uint32_t>(plan.batch, 1);
  if (plan.warm_up) {
    if (auto b = baseline(batch); !b) return Fail(state, "baseline warm-up", b.error());
    if (auto v = virt(batch); !v) return Fail(state, "virt warm-up", v.error());
  }
  std::vector<double> ratios;
  double baseline_total = 0;
  const auto record = [&](const Pair& unit) {
    RecordPair(row, unit);
    baseline_total += unit.baseline_ns;
    if (unit.baseline_ns > 0) ratios.push_back(unit.virt_ns / unit.baseline_ns);
  };
  bool virt_first = false;
  std::optional<Pair> previous;
  for (auto _ : state) {
    BatchTime b, v;
    if (virt_first) {
      v = virt(batch);
      if (v) b = baseline(batch);
    } else {
      b = baseline(batch);
      if (b) v = virt(batch);
    }
    virt_first = !virt_first;
    if (!b) {
      Fail(state, "baseline", b.error());
      break;
    }
    if (!v) {
      Fail(state, "virt", v.error());
      break;
    }
    const Pair pair{*b / batch, *v / batch};
    state.SetIterationTime(pair.virt_ns / 1e9);
    // The side that runs first in a pair follows itself (the pair before ended with it), the
    // other follows the other side: on KVM that is a switch to another VM's vCPU, which the
    // second side pays. So each recorded unit is two consecutive pairs, one of each order
    // (A B, B A): both sides once first and once second; its figures are their means.
    if (previous) {
      record({(previous->baseline_ns + pair.baseline_ns) / 2,
              (previous->virt_ns + pair.virt_ns) / 2});
    }
    previous = pair;
  }
  // A repetition of one pair (the vmm_* rows: each side a process of its own) has no unit of
  // two: that pair is the unit.
  if (ratios.empty() && previous) record(*previous);
  state.counters["batch"] = batch;
  if (!ratios.empty()) {
    state.counters["baseline_ns"] = baseline_total / static_cast<double>(ratios.size());
    std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
    state.counters["ratio"] = ratios[ratios.size() / 2];
  }
}

}  // namespace virt_bench
