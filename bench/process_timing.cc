// process_timing: posix_spawn with two pipes, a poll loop stamping the first stdout byte, waitpid.
#include "process_timing.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace virt_bench {
namespace {

using Clock = std::chrono::steady_clock;

// Both ends of a pipe, closed on scope exit.
struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void CloseWrite() {
    ::close(fd[1]);
    fd[1] = -1;
  }
};

std::string Errno(const char* call) { return std::string(call) + ": " + std::strerror(errno); }

double Since(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

// Waits for `pid` (retrying EINTR); its status as TimedRun::status.
std::expected<int, std::string> Reap(pid_t pid) {
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) return std::unexpected(Errno("waitpid"));
  }
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

// Reads both pipes to EOF; stamps the first stdout byte. False (with `why`) on a poll failure
// or at the deadline.
bool Drain(Pipe& out, Pipe& err, Clock::time_point start, Clock::time_point deadline, TimedRun& run,
           std::string& why) {
  pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  int open = 2;
  char buf[4096];
  while (open > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      why = "still running at the bound";
      return false;
    }
    const int ready = ::poll(fds, 2, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      why = Errno("poll");
      return false;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (i == 0 && !run.first_byte_ns) run.first_byte_ns = Since(start);
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open;
      }
    }
  }
  return true;
}

}  // namespace

std::expected<TimedRun, std::string> RunTimed(const std::vector<std::string>& argv,
                                              std::chrono::seconds timeout) {
  if (argv.empty()) return std::unexpected("RunTimed: no program");
  Pipe out, err;
  if (::pipe2(out.fd, O_CLOEXEC) != 0 || ::pipe2(err.fd, O_CLOEXEC) != 0) {
    return std::unexpected(Errno("pipe2"));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  TimedRun run;
  pid_t pid = -1;
  const Clock::time_point start = Clock::now();
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return std::unexpected("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  out.CloseWrite();
  err.CloseWrite();

  std::string why;
  if (!Drain(out, err, start, start + timeout, run, why)) {
    ::kill(pid, SIGKILL);  // our own child, by its pid
    (void)Reap(pid);
    return std::unexpected(argv[0] + ": " + why + " (" + std::to_string(timeout.count()) +
                           " s); stderr: " + run.err);
  }
  auto status = Reap(pid);
  if (!status) return std::unexpected(status.error());
  run.exit_ns = Since(start);
  run.status = *status;
  return run;
}

}  // namespace virt_bench
