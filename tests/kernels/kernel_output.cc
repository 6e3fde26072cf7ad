// kernel_output.cc: line splitting and verdict counting.
#include "kernel_output.h"

namespace virt::kernels {

KernelOutput::KernelOutput(std::string_view console) {
  size_t start = 0;
  while (start < console.size()) {
    size_t end = console.find('\n', start);
    if (end == std::string_view::npos) end = console.size();
    std::string_view line = console.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines_.emplace_back(line);
    start = end + 1;
  }
}

int KernelOutput::Count(std::string_view prefix) const {
  int n = 0;
  for (const std::string& l : lines_) n += l.starts_with(prefix);
  return n;
}

std::optional<std::string> KernelOutput::summary() const {
  for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
    if (it->starts_with("SUMMARY: ")) return *it;
  }
  return std::nullopt;
}

std::string KernelOutput::ExpectedSummary() const {
  std::string s = "SUMMARY: " + std::to_string(passes() + failures() + skips()) + " tests";
  if (failures()) s += ", " + std::to_string(failures()) + " unexpected failures";
  if (skips()) s += ", " + std::to_string(skips()) + " skipped";
  return s;
}

bool KernelOutput::Has(std::string_view line) const {
  const bool prefix = line.ends_with('*');
  if (prefix) line.remove_suffix(1);
  for (const std::string& l : lines_) {
    if (prefix ? l.starts_with(line) : l == line) return true;
  }
  return false;
}

}  // namespace virt::kernels
