// paired: the alternation of a paired row's two sides and the per-pair records.
#include "paired.h"

#include <algorithm>
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
  bool virt_first = false;
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
    RecordPair(row, pair);
    state.SetIterationTime(pair.virt_ns / 1e9);
    baseline_total += pair.baseline_ns;
    if (pair.baseline_ns > 0) ratios.push_back(pair.virt_ns / pair.baseline_ns);
  }
  state.counters["batch"] = batch;
  if (!ratios.empty()) {
    state.counters["baseline_ns"] = baseline_total / static_cast<double>(ratios.size());
    std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 2, ratios.end());
    state.counters["ratio"] = ratios[ratios.size() / 2];
  }
}

}  // namespace virt_bench
