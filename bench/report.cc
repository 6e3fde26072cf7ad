// report: median collection from Google Benchmark runs, and the JSON and Markdown renderings.
#include "report.h"

#include <algorithm>
#include <cstdio>

namespace virt_bench {
namespace {

std::vector<Comparison>& Registry() {
  static std::vector<Comparison> comparisons;
  return comparisons;
}

std::map<std::string, std::vector<Pair>>& PairRegistry() {
  static std::map<std::string, std::vector<Pair>> pairs;
  return pairs;
}

// The q-quantile of sorted, non-empty values, interpolated between neighbours (q = 0.5: the
// median).
double Quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return Quantile(values, 0.5);
}

// A paired row's figures from its pairs: each side's median, the median per-pair ratio and the
// ratios' spread. Pairs with a zero baseline give no ratio.
void FillFromPairs(const std::vector<Pair>& pairs, Row& row) {
  std::vector<double> baseline, virt, ratios;
  for (const Pair& p : pairs) {
    baseline.push_back(p.baseline_ns);
    virt.push_back(p.virt_ns);
    if (p.baseline_ns > 0) ratios.push_back(p.virt_ns / p.baseline_ns);
  }
  row.baseline_ns = Median(baseline);
  row.virt_ns = Median(virt);
  if (ratios.empty()) return;
  std::sort(ratios.begin(), ratios.end());
  row.ratio = Quantile(ratios, 0.5);
  row.spread = RatioSpread{ratios.size(), ratios.front(), Quantile(ratios, 0.25),
                           Quantile(ratios, 0.75), ratios.back()};
}

// "route_programming/raw/2048": the registered name and argument, without the "/real_time",
// "/iterations:N" ... decorations Google Benchmark appends.
std::string Key(const benchmark::BenchmarkReporter::Run& run) {
  const auto& n = run.run_name;
  return n.args.empty() ? n.function_name : n.function_name + "/" + n.args;
}

double ToNs(double value, benchmark::TimeUnit unit) {
  switch (unit) {
    case benchmark::kNanosecond: return value;
    case benchmark::kMicrosecond: return value * 1e3;
    case benchmark::kMillisecond: return value * 1e6;
    case benchmark::kSecond: return value * 1e9;
  }
  return value;
}

// Time per iteration, or per operation when the benchmark says how many it does. Like Google
// Benchmark itself: wall-clock time for benchmarks registered with UseRealTime() (everything that
// enters the kernel or waits for the guest), CPU time for the rest (pure user-space code such as
// gsi_table, where wall-clock time on a loaded host mostly measures the other processes).
// Manual time (UseManualTime: what the benchmark measured itself) is kept as real time.
double TimeNs(const benchmark::BenchmarkReporter::Run& run) {
  const bool real =
      run.run_name.time_type == "real_time" || run.run_name.time_type == "manual_time";
  double ns = ToNs(real ? run.GetAdjustedRealTime() : run.GetAdjustedCPUTime(), run.time_unit);
  const auto it = run.counters.find("ops_per_iteration");
  if (it != run.counters.end() && it->second.value > 0) {
    ns /= it->second.value;
  }
  return ns;
}

// Ratios far below 1 (a VMM against QEMU) keep three significant digits.
std::string RatioText(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, r >= 0.1 ? "%.3f" : "%.3g", r);
  return buf;
}

std::string Number(std::optional<double> v, const char* format) {
  if (!v) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, *v);
  return buf;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Duration(std::optional<double> ns) {
  if (!ns) return "—";
  char buf[32];
  if (*ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f ns", *ns);
  } else if (*ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f µs", *ns / 1e3);
  } else if (*ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f ms", *ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", *ns / 1e9);
  }
  return buf;
}

std::optional<bool> Met(const Goal& goal, const Row& row) {
  switch (goal.kind) {
    case Goal::Kind::kNone: return std::nullopt;
    case Goal::Kind::kRatioAtMost:
      if (!row.ratio) return std::nullopt;
      return *row.ratio <= goal.value;
    case Goal::Kind::kRatioAtLeast:
      if (!row.ratio) return std::nullopt;
      return *row.ratio >= goal.value;
    case Goal::Kind::kVirtNsBelow:
      if (!row.virt_ns) return std::nullopt;
      return *row.virt_ns < goal.value;
  }
  return std::nullopt;
}

}  // namespace

double SpreadFraction(const RatioSpread& spread, double median) {
  if (median <= 0) return 0;
  return std::max(median - spread.q1, spread.q3 - median) / median;
}

std::string Goal::Text() const {
  char buf[48];
  switch (kind) {
    case Kind::kNone: return "";
    case Kind::kRatioAtMost: std::snprintf(buf, sizeof buf, "ratio <= %g", value); break;
    case Kind::kRatioAtLeast: std::snprintf(buf, sizeof buf, "ratio >= %g", value); break;
    case Kind::kVirtNsBelow: std::snprintf(buf, sizeof buf, "virt < %g ns/op", value); break;
  }
  return buf;
}

void AddComparison(Comparison comparison) { Registry().push_back(std::move(comparison)); }
const std::vector<Comparison>& Comparisons() { return Registry(); }

void RecordPair(const std::string& row, Pair pair) { PairRegistry()[row].push_back(pair); }

const std::vector<Pair>& Pairs(const std::string& row) { return PairRegistry()[row]; }

bool MedianCollector::ReportContext(const Context& context) {
  return console_.ReportContext(context);
}

void MedianCollector::ReportRuns(const std::vector<Run>& runs) {
  console_.ReportRuns(runs);
  for (const Run& run : runs) {
    Measured& m = measured_[Key(run)];
    if (run.error_occurred) {
      m.skipped = run.error_message;
    } else if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name == "median") m.median_ns = TimeNs(run);
    } else {
      m.samples_ns.push_back(TimeNs(run));
    }
  }
}

std::optional<double> MedianCollector::Measured::Value() const {
  if (median_ns) return median_ns;
  if (samples_ns.empty()) return std::nullopt;
  return Median(samples_ns);
}

std::vector<Row> BuildRows(const MedianCollector& collector) {
  const auto& measured = collector.measured();
  auto find = [&](const std::string& name) -> const MedianCollector::Measured* {
    if (name.empty()) return nullptr;
    auto it = measured.find(name);
    return it == measured.end() ? nullptr : &it->second;
  };
  std::vector<Row> rows;
  for (const Comparison& c : Comparisons()) {
    const auto* baseline = find(c.baseline);
    const auto* virt = find(c.virt);
    if (baseline == nullptr && virt == nullptr) continue;  // filtered out
    Row row;
    row.name = c.name;
    row.goal = c.goal;
    std::vector<std::string> reasons;
    auto note = [&](const MedianCollector::Measured* m, const std::string& name) {
      std::string why;
      if (name.empty()) return;
      if (m == nullptr) {
        why = name + " was not run (filtered out)";
      } else if (!m->skipped.empty()) {
        why = m->skipped;
      } else if (!m->Value()) {
        why = name + " produced no timing";
      }
      if (!why.empty() && std::find(reasons.begin(), reasons.end(), why) == reasons.end()) {
        reasons.push_back(why);
      }
    };
    note(virt, c.virt);
    note(baseline, c.baseline);
    if (c.paired) {
      const std::vector<Pair>& pairs = Pairs(c.name);
      if (virt != nullptr && virt->skipped.empty()) {
        if (pairs.empty()) {
          reasons.push_back(c.virt + " recorded no pairs");
        } else {
          FillFromPairs(pairs, row);
        }
      }
    } else {
      if (baseline != nullptr && baseline->skipped.empty()) row.baseline_ns = baseline->Value();
      if (virt != nullptr && virt->skipped.empty()) row.virt_ns = virt->Value();
      if (row.baseline_ns && row.virt_ns && *row.baseline_ns > 0) {
        row.ratio = *row.virt_ns / *row.baseline_ns;
      }
    }
    for (const std::string& r : reasons) row.skipped += (row.skipped.empty() ? "" : "; ") + r;
    row.met = Met(c.goal, row);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ToJson(const std::vector<Row>& rows) {
  std::string out = "[\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out += "  {\"name\": " + JsonString(r.name);
    out += ", \"baseline_ns\": " + Number(r.baseline_ns, "%.2f");
    out += ", \"virt_ns\": " + Number(r.virt_ns, "%.2f");
    out += ", \"ratio\": " + Number(r.ratio, "%.5g");
    out += ", \"goal\": " + (r.goal.kind == Goal::Kind::kNone ? "null" : JsonString(r.goal.Text()));
    out += ", \"met\": " + (r.met ? std::string(*r.met ? "true" : "false") : "null");
    if (r.spread) {
      out += ", \"pairs\": " + std::to_string(r.spread->pairs);
      out += ", \"ratio_min\": " + Number(r.spread->min, "%.5g");
      out += ", \"ratio_q1\": " + Number(r.spread->q1, "%.5g");
      out += ", \"ratio_q3\": " + Number(r.spread->q3, "%.5g");
      out += ", \"ratio_max\": " + Number(r.spread->max, "%.5g");
      const double spread = r.ratio ? SpreadFraction(*r.spread, *r.ratio) : 0;
      out += ", \"spread_pct\": " + Number(spread * 100, "%.3g");
      out += std::string(", \"spread_ok\": ") + (spread <= kSteadySpread ? "true" : "false");
    }
    if (!r.skipped.empty()) out += ", \"skipped\": " + JsonString(r.skipped);
    out += i + 1 < rows.size() ? "},\n" : "}\n";
  }
  return out + "]\n";
}

std::string ToMarkdown(const std::vector<Row>& rows) {
  std::string out =
      "| benchmark | baseline (median) | virt (median) | ratio | spread | goal | met |\n"
      "| --- | --- | --- | --- | --- | --- | --- |\n";
  for (const Row& r : rows) {
    std::string met = r.met ? (*r.met ? "yes" : "**no**") : "—";
    if (!r.skipped.empty()) {
      std::string why = r.skipped;
      std::replace(why.begin(), why.end(), '|', '/');
      std::replace(why.begin(), why.end(), '\n', ' ');  // one table row
      met = "skipped: " + why;
    }
    std::string ratio = r.ratio ? RatioText(*r.ratio) : "—";
    std::string spread = "—";
    if (r.spread) {
      ratio += " (IQR " + RatioText(r.spread->q1) + "–" + RatioText(r.spread->q3) + ", " +
               std::to_string(r.spread->pairs) + (r.spread->pairs == 1 ? " pair)" : " pairs)");
      if (r.ratio) {
        const double s = SpreadFraction(*r.spread, *r.ratio);
        char buf[64];
        const char* format = s <= kSteadySpread ? "±%.2f %%" : "**±%.1f %%: wider than ±1 %%**";
        std::snprintf(buf, sizeof buf, format, s * 100);
        spread = buf;
      }
    }
    out += "| " + r.name + " | " + Duration(r.baseline_ns) + " | " + Duration(r.virt_ns) + " | " +
           ratio + " | " + spread + " | " +
           (r.goal.kind == Goal::Kind::kNone ? std::string("—") : r.goal.Text()) + " | " + met +
           " |\n";
  }
  return out;
}

}  // namespace virt_bench
