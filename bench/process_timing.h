// process_timing: runs a program and times, from just before it is spawned, the first byte it
// writes to its stdout and its exit, as the reader of its stdout pipe sees them.
#pragma once

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <vector>

namespace virt_bench {

// What one timed run saw. Times are steady_clock nanoseconds from the instant before
// posix_spawn.
struct TimedRun {
  int status = -1;                      // the exit status, or 128 + the signal that killed it
  std::optional<double> first_byte_ns;  // its first stdout byte arrived here (none: no output)
  double exit_ns = 0;                   // waitpid returned (after both pipes reached EOF)
  std::string out;                      // all of its stdout
  std::string err;                      // all of its stderr
};

// Spawns argv[0] with argv (posix_spawn, no shell, stdin from /dev/null, stdout and stderr on
// pipes drained with poll), records when the first stdout byte is read and when the process is
// reaped. Both VMMs under comparison are run through this one function, so they pay the same
// spawn, pipe and wake-up costs. Fails with a message when the program cannot be started, a
// pipe or poll call fails, or it runs past `timeout` (it is then killed with SIGKILL and
// reaped).
std::expected<TimedRun, std::string> RunTimed(const std::vector<std::string>& argv,
                                              std::chrono::seconds timeout);

}  // namespace virt_bench
