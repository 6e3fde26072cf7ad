// run_process.h: runs a program to completion and captures its exit status, stdout and stderr.
#pragma once

#include <string>
#include <vector>

namespace virt::kernels {

struct ProcessResult {
  // The exit status (0-255); 128 + the signal if it was killed; -1 if it could not start.
  int status = -1;
  std::string out;
  std::string err;  // its stderr, or why it could not start
};

// Starts argv[0] with argv (posix_spawn, no shell, stdin from /dev/null), reads both pipes to
// the end and waits for it. Bounded only by the program itself (virt-run --timeout).
ProcessResult RunProcess(const std::vector<std::string>& argv);

}  // namespace virt::kernels
