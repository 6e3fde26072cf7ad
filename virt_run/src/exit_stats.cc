// ProcessStart: a time taken during static initialisation.
#include "virt_run/exit_stats.h"

namespace virt::run {
namespace {

const std::chrono::steady_clock::time_point kProcessStart = std::chrono::steady_clock::now();

}  // namespace

std::chrono::steady_clock::time_point ProcessStart() { return kProcessStart; }

}  // namespace virt::run
