// virt-bench: runs the suite (5 repetitions each), writes bench-report.json and a Markdown table.
//
//   virt-bench [--report=PATH] [Google Benchmark flags, e.g. --benchmark_filter=gsi_table]
//
// Every benchmark runs --benchmark_repetitions=5 times unless the command line says otherwise,
// and only the aggregates are displayed; the report takes the median of the repetitions (with a
// single repetition, the one run). Real-KVM benchmarks skip with the reason when /dev/kvm is
// unusable; the report lists them with that reason. The exit status is 0 whether or not the
// goals are met (the numbers are for people; tests only check the report is well formed), 1
// when the report cannot be written, 2 on a bad command line.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "report.h"

namespace {

constexpr std::string_view kReportFlag = "--report=";

// 2048 routes hold 2048 eventfds, past the usual soft limit of 1024 open files: lift the soft
// limit to the hard one, as VMMs do. If the hard limit is lower, those benchmarks fail with EMFILE.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
  }
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string report_path = "bench-report.json";
  // Defaults first, so the same flags given on the command line (parsed later) override them.
  std::string repetitions = "--benchmark_repetitions=5";
  std::string aggregates_only = "--benchmark_display_aggregates_only=true";
  std::vector<char*> args = {argv[0], repetitions.data(), aggregates_only.data()};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with(kReportFlag)) {
      report_path = std::string(arg.substr(kReportFlag.size()));
    } else {
      args.push_back(argv[i]);
    }
  }
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) {
    std::fprintf(stderr, "virt-bench: unknown flag (besides Google Benchmark's: --report=PATH)\n");
    return 2;
  }
  if (report_path.empty()) {
    std::fprintf(stderr, "virt-bench: --report needs a path\n");
    return 2;
  }

  RaiseOpenFileLimit();
  benchmark::ConsoleReporter console(isatty(STDOUT_FILENO) != 0
                                         ? benchmark::ConsoleReporter::OO_Color
                                         : benchmark::ConsoleReporter::OO_None);
  virt_bench::MedianCollector collector(console);
  const size_t ran = benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::Shutdown();
  if (ran == 0 || collector.measured().empty()) return 0;  // nothing matched, or --list_tests

  const std::vector<virt_bench::Row> rows = virt_bench::BuildRows(collector);
  std::printf("\n%s", virt_bench::ToMarkdown(rows).c_str());
  if (!WriteFile(report_path, virt_bench::ToJson(rows))) {
    std::perror(("virt-bench: cannot write " + report_path).c_str());
    return 1;
  }
  std::printf("\nreport: %s\n", report_path.c_str());
  return 0;
}
