// Options: virt-run's command line (see CONTRACT.md), parsed and range-checked.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virt/cpuid.h"
#include "virt_run/checked.h"

namespace virt::run {

// One --cpu item: show (+name) or hide (-name) a known CPUID feature.
struct CpuFlag {
  CpuidFeature feature;
  bool on = true;
};

struct Options {
  std::string backend = "auto";   // kvm | mshv | whp | auto (VIRT_BACKEND overrides auto)
  uint32_t smp = 1;               // vCPUs, 1..kMaxSmp
  uint64_t memory_mib = 128;      // -m MiB (or with a suffix: 512M, 2G), kMinMemoryMib..kMaxMemoryMib
  std::string append;             // --append: the guest's cmdline after argv[0]
  std::optional<std::string> initrd;
  std::vector<CpuFlag> cpu;       // --cpu, in the order given (a later item wins)
  uint64_t timeout_s = 90;        // 0 = none
  bool json = false;
  bool help = false;              // -h / --help: print Usage() and exit 0
  std::string kernel;             // the KERNEL path as given (the guest's argv[0])
};

inline constexpr uint32_t kMaxSmp = 1024;
inline constexpr uint64_t kMinMemoryMib = 2;
inline constexpr uint64_t kMaxMemoryMib = 1024 * 1024;  // 1 TiB
inline constexpr uint64_t kMaxTimeoutS = 365ull * 24 * 3600;

// Parses argv[1..]. Every option takes its value as the next argument or after '='
// ("--smp 4", "--smp=4", "-m 64"). Exactly one KERNEL; "--" ends the options. Numbers are
// decimal. Every error names the option and the bad value.
Checked<Options> ParseOptions(std::span<const char* const> args);

// The usage text (several lines, ending in '\n').
std::string Usage();

}  // namespace virt::run
