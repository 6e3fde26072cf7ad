// vmm_commands: environment overrides over CMake's paths, a $PATH search, the command lines.
#include "vmm_commands.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

#ifndef VIRT_BENCH_BUILT_VIRT_RUN
#define VIRT_BENCH_BUILT_VIRT_RUN ""
#endif
#ifndef VIRT_BENCH_BUILT_TEST_KERNEL_DIR
#define VIRT_BENCH_BUILT_TEST_KERNEL_DIR ""
#endif
#ifndef VIRT_BENCH_BUILT_KERNEL_DIR
#define VIRT_BENCH_BUILT_KERNEL_DIR ""
#endif

namespace virt_bench {
namespace {

// $name when set and non-empty, else `built`.
std::string FromEnv(const char* name, const char* built) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::string(built);
}

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::expected<std::string, std::string> InDir(const char* env, const char* built,
                                              const std::string& file) {
  const std::string dir = FromEnv(env, built);
  if (dir.empty()) {
    return std::unexpected(std::string("no kernel directory: virt-run's kernels are not built "
                                       "(VIRT_BUILD_EXAMPLES=OFF); set ") +
                           env);
  }
  const std::string path = dir + "/" + file;
  if (::access(path.c_str(), R_OK) != 0) {
    return std::unexpected(path + " is missing (build virt-bench's dependencies, or set " + env +
                           ")");
  }
  return path;
}

}  // namespace

std::expected<std::string, std::string> VirtRunPath() {
  const std::string path = FromEnv("VIRT_BENCH_VIRT_RUN", VIRT_BENCH_BUILT_VIRT_RUN);
  if (path.empty()) {
    return std::unexpected(
        "virt-run is not built (VIRT_BUILD_EXAMPLES=OFF); set VIRT_BENCH_VIRT_RUN");
  }
  if (!Executable(path)) return std::unexpected("virt-run not executable at " + path);
  return path;
}

std::expected<std::string, std::string> QemuPath() {
  const char* env = std::getenv("VIRT_BENCH_QEMU");
  if (env != nullptr && *env != '\0') {
    if (!Executable(env)) {
      return std::unexpected(std::string("VIRT_BENCH_QEMU not executable: ") + env);
    }
    return std::string(env);
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (dir.empty()) continue;
    const std::string candidate = std::string(dir) + "/qemu-system-x86_64";
    if (Executable(candidate)) return candidate;
  }
  return std::unexpected(
      "QEMU not installed: no qemu-system-x86_64 on PATH (or set VIRT_BENCH_QEMU)");
}

std::expected<std::string, std::string> TestKernelPath(const std::string& file) {
  return InDir("VIRT_BENCH_TEST_KERNEL_DIR", VIRT_BENCH_BUILT_TEST_KERNEL_DIR, file);
}

std::expected<std::string, std::string> BenchKernelPath(const std::string& file) {
  return InDir("VIRT_BENCH_KERNEL_DIR", VIRT_BENCH_BUILT_KERNEL_DIR, file);
}

std::vector<std::string> QemuCommand(const std::string& qemu, const BootSpec& spec) {
  std::vector<std::string> argv = {qemu, "-accel", "kvm", "-cpu", "host", "-kernel", spec.kernel};
  for (const char* arg : {"-display", "none", "-serial", "stdio", "-device",
                          "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot", "-nodefaults"}) {
    argv.push_back(arg);
  }
  argv.insert(argv.end(),
              {"-smp", std::to_string(spec.smp), "-m", std::to_string(spec.memory_mib)});
  if (!spec.append.empty()) argv.insert(argv.end(), {"-append", spec.append});
  return argv;
}

std::vector<std::string> VirtRunCommand(const std::string& virt_run, const BootSpec& spec) {
  std::vector<std::string> argv = {virt_run, "--backend", "kvm", "--smp", std::to_string(spec.smp),
                                   "-m", std::to_string(spec.memory_mib), "--timeout", "120"};
  if (!spec.append.empty()) argv.insert(argv.end(), {"--append", spec.append});
  argv.push_back(spec.kernel);
  return argv;
}

}  // namespace virt_bench
