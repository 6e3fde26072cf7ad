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
struct Comparison {
  std::string name;
  std::string baseline;
  std::string virt;
  Goal goal;
};

// Registers a row; benchmark files call this next to their RegisterBenchmark calls. Rows are
// reported in registration order.
void AddComparison(Comparison comparison);
const std::vector<Comparison>& Comparisons();

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
  std::string skipped;  // non-empty: why the row could not be measured
  Goal goal;
  std::optional<bool> met;
};

// One row per registered comparison that ran (at least one side was selected by the filter).
std::vector<Row> BuildRows(const MedianCollector& collector);

// A JSON list of {"name", "baseline_ns", "virt_ns", "ratio", "goal", "met"} or
// {"name", "skipped", "goal"}.
std::string ToJson(const std::vector<Row>& rows);

// A Markdown table of the rows.
std::string ToMarkdown(const std::vector<Row>& rows);

}  // namespace virt_bench
