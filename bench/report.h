// report: collects each benchmark's median and writes bench-report.json and a Markdown table.
#pragma once

#include <benchmark/benchmark.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace virt_bench {

// What a report row must show.
struct Goal {
  enum class Kind { kNone, kRatioAtMost, kRatioAtLeast, kVirtNsBelow };
  Kind kind = Kind::kNone;
  double value = 0;

  static Goal None() { return {}; }
  static Goal RatioAtMost(double v) { return {Kind::kRatioAtMost, v}; }
  static Goal RatioAtLeast(double v) { return {Kind::kRatioAtLeast, v}; }
  static Goal VirtNsBelow(double v) { return {Kind::kVirtNsBelow, v}; }

  std::string Text() const;  // "ratio <= 1.03", "" for none
};

// One report row: the benchmark measuring the library path (`virt`) against the one measuring
// its baseline (`baseline`, empty for library-only rows). Names are registered benchmark names
// with their argument ("route_programming/raw/2048"). Benchmarks that store a counter named
// "ops_per_iteration" are reported per operation.
//
// A `paired` row is measured by one benchmark (`virt`; `baseline` stays empty) that runs both
// sides alternately, baseline then virt, and records each pair with RecordPair under the row's
// `name`. Its baseline and virt figures are the medians over the pairs and its ratio is the
// median of the per-pair ratios, with their spread, so drift of the host between pairs moves
// both sides of a ratio alike.
struct Comparison {
  std::string name;
  std::string baseline;
  std::string virt;
  Goal goal;
  bool paired = false;
};

// Registers a row; benchmark files call this next to their RegisterBenchmark calls. Rows are
// reported in registration order.
void AddComparison(Comparison comparison);
const std::vector<Comparison>& Comparisons();

// One pair of a paired row: the baseline's and virt's time, measured back to back.
struct Pair {
  double baseline_ns;
  double virt_ns;
};

// Appends a pair to the paired row `row` (a Comparison name); pairs from every repetition of
// the benchmark are pooled.
void RecordPair(const std::string& row, Pair pair);
const std::vector<Pair>& Pairs(const std::string& row);

// The spread of a paired row's per-pair ratios: how many, the extremes and the quartiles.
struct RatioSpread {
  size_t pairs = 0;
  double min = 0;
  double q1 = 0;
  double q3 = 0;
  double max = 0;
};

// How far the quartiles reach from the median ratio, as a fraction of it:
// max(median - q1, q3 - median) / median.
double SpreadFraction(const RatioSpread& spread, double median);

// The widest spread (±1 %) a paired row may show and still be called steady: its quartiles lie
// within median × (1 ± kSteadySpread). Rows wider than that say so in the report.
inline constexpr double kSteadySpread = 0.01;

// A display reporter that forwards everything to `console` and keeps, per benchmark name, the
// median time per iteration (or per operation) and any SkipWithError message.
class MedianCollector : public benchmark::BenchmarkReporter {
 public:
  explicit MedianCollector(benchmark::BenchmarkReporter& console) : console_(console) {}

  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  void Finalize() override { console_.Finalize(); }

  struct Measured {
    std::optional<double> median_ns;  // the "median" aggregate (repetitions >= 2)
    std::vector<double> samples_ns;   // single repetitions, used when there is no aggregate
    std::string skipped;              // the SkipWithError message, if any
    std::optional<double> Value() const;
  };
  const std::map<std::string, Measured>& measured() const { return measured_; }

 private:
  benchmark::BenchmarkReporter& console_;
  std::map<std::string, Measured> measured_;
};

// A report row with numbers filled in; absent values are nullopt.
struct Row {
  std::string name;
  std::optional<double> baseline_ns;
  std::optional<double> virt_ns;
  std::optional<double> ratio;
  std::optional<RatioSpread> spread;  // paired rows only
  std::string skipped;                // non-empty: why the row could not be measured
  Goal goal;
  std::optional<bool> met;
};

// One row per registered comparison that ran (at least one side was selected by the filter).
std::vector<Row> BuildRows(const MedianCollector& collector);

// A JSON list of {"name", "baseline_ns", "virt_ns", "ratio", "goal", "met"}, paired rows adding
// {"pairs", "ratio_min", "ratio_q1", "ratio_q3", "ratio_max", "spread_pct", "spread_ok"}
// (spread_pct: SpreadFraction in percent; spread_ok: at most kSteadySpread), rows that could not
// be measured adding "skipped".
std::string ToJson(const std::vector<Row>& rows);

// A Markdown table of the rows; paired rows show their quartiles and pair count next to the
// ratio and, in the spread column, ±spread_pct, flagged when wider than ±1 %.
std::string ToMarkdown(const std::vector<Row>& rows);

}  // namespace virt_bench
