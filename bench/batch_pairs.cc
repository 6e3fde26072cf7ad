// batch_pairs: the alternation of a paired row's sides and its per-pair records.
#include "batch_pairs.h"

#include <algorithm>
#include <vector>

#include "bench_common.h"
#include "report.h"

namespace virt_bench {

void RunBatchPairs(benchmark::State& state, const std::string& row, uint32_t batch,
                   const BatchSide& baseline, const BatchSide& virt) {
  batch = std::max<uint32_t>(batch, 1);
  if (auto b = baseline(batch); !b) return Fail(state, "baseline warm-up", b.error());
  if (auto v = virt(batch); !v) return Fail(state, "virt warm-up", v.error());
  std::vector<double> ratios;
  bool virt_first = false;
  for (auto _ : state) {
    std::expected<double, std::string> b, v;
    if (virt_first) {
      v = virt(batch);
      if (v) b = baseline(batch);
    } else {
      b = baseline(batch);
      if (b) v = virt(batch);
    }
    virt_first = !virt_first;
    if (!b || !v) {
      Fail(state, !b ? "baseline" : "virt", !b ? b.error() : v.error());
      break;
    }
    const Pair pair{*b / batch, *v / batch};
    RecordPair(row, pair);
    state.SetIterationTime(pair.virt_ns / 1e9);
    if (pair.baseline_ns > 0) ratios.push_back(pair.virt_ns / pair.baseline_ns);
  }
  state.counters["batch"] = batch;
  if (!ratios.empty()) {
    std::sort(ratios.begin(), ratios.end());
    state.counters["ratio"] = ratios[ratios.size() / 2];  // this repetition's median pair
  }
}

}  // namespace virt_bench
