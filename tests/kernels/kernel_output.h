// kernel_output.h: a test kernel's console output as kvm-unit-tests-style verdict lines.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace virt::kernels {

class KernelOutput {
 public:
  // Splits the console text into lines ("\r\n" or "\n").
  explicit KernelOutput(std::string_view console);

  const std::vector<std::string>& lines() const { return lines_; }
  // Lines starting "PASS: ", "FAIL: ", "SKIP: ".
  int passes() const { return Count("PASS: "); }
  int failures() const { return Count("FAIL: "); }
  int skips() const { return Count("SKIP: "); }
  // The last "SUMMARY: ..." line, if any.
  std::optional<std::string> summary() const;
  // The SUMMARY line the verdict lines add up to, in the kernels' (and kvm-unit-tests') format.
  std::string ExpectedSummary() const;
  // Whether a line equals `line`, or starts with it when it ends in '*'.
  bool Has(std::string_view line) const;

 private:
  int Count(std::string_view prefix) const;

  std::vector<std::string> lines_;
};

}  // namespace virt::kernels
