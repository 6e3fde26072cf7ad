// RunBinary: runs a program with arguments and captures its exit status, stdout and stderr.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace virt::run::testing {

struct RunResult {
  int status = -1;  // the exit status, or -1 if it did not exit normally
  std::string out, err;
};

inline std::string Slurp(std::FILE* f) {
  std::string s;
  std::rewind(f);
  for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
  return s;
}

// fork + execv with stdout and stderr in temporary files (no pipe can fill up and block).
inline RunResult RunBinary(const std::string& program, const std::vector<std::string>& args) {
  RunResult r;
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  if (out == nullptr || err == nullptr) return r;
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fileno(out), 1);
    ::dup2(fileno(err), 2);
    ::execv(program.c_str(), argv.data());
    ::_exit(127);
  }
  int wstatus = 0;
  if (pid > 0 && ::waitpid(pid, &wstatus, 0) == pid && WIFEXITED(wstatus)) {
    r.status = WEXITSTATUS(wstatus);
  }
  r.out = Slurp(out);
  r.err = Slurp(err);
  std::fclose(out);
  std::fclose(err);
  return r;
}

}  // namespace virt::run::testing
