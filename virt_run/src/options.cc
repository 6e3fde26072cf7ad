// Command-line parsing for virt-run: the contract's options, each value range-checked.
#include "virt_run/options.h"

#include <charconv>
#include <string>

namespace virt::run {

namespace {

// A decimal number with no sign, no spaces and no overflow; nullopt otherwise.
std::optional<uint64_t> ParseDecimal(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Checked<uint64_t> ParseNumber(std::string_view option, std::string_view text, uint64_t min,
                              uint64_t max) {
  auto value = ParseDecimal(text);
  if (!value || *value < min || *value > max) {
    return Reject(std::string(option) + ": '" + std::string(text) + "' is not a number in " +
                  std::to_string(min) + ".." + std::to_string(max));
  }
  return *value;
}

// -m: MiB, or a number with an M or G suffix (QEMU's spelling).
Checked<uint64_t> ParseMemory(std::string_view text) {
  std::string_view digits = text;
  uint64_t scale = 1;
  if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) {
    digits.remove_suffix(1);
  } else if (!digits.empty() && (digits.back() == 'G' || digits.back() == 'g')) {
    digits.remove_suffix(1);
    scale = 1024;
  }
  auto value = ParseDecimal(digits);
  if (!value || *value > kMaxMemoryMib / scale || *value * scale < kMinMemoryMib) {
    return Reject("-m: '" + std::string(text) + "' is not a size in " +
                  std::to_string(kMinMemoryMib) + ".." + std::to_string(kMaxMemoryMib) +
                  " MiB");
  }
  return *value * scale;
}

// --cpu +x2apic,-tsc-deadline,...: every item needs a sign and a known name.
Checked<std::vector<CpuFlag>> ParseCpu(std::string_view text) {
  std::vector<CpuFlag> flags;
  if (text.empty()) return Reject("--cpu: empty feature list");
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string_view item =
        text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.size() < 2 || (item[0] != '+' && item[0] != '-')) {
      return Reject("--cpu: '" + std::string(item) +
                    "' is not +name or -name (e.g. +x2apic,-tsc-deadline)");
    }
    auto feature = FindCpuidFeature(item.substr(1));
    if (!feature) {
      std::string known;
      for (const CpuidFeature& f : KnownCpuidFeatures()) {
        known += known.empty() ? "" : ", ";
        known += f.name;
      }
      return Reject("--cpu: unknown CPUID feature '" + std::string(item.substr(1)) +
                    "' (known: " + known + ")");
    }
    flags.push_back({*feature, item[0] == '+'});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return flags;
}

bool IsBackendName(std::string_view name) {
  return name == "auto" || name == "kvm" || name == "mshv" || name == "whp";
}

}  // namespace

std::string Usage() {
  return "usage: virt-run [--backend kvm|mshv|whp|auto] [--smp N] [-m MiB] [--append ARGS]\n"
         "                [--initrd FILE] [--cpu +feature,-feature,...] [--timeout S] [--json]\n"
         "                KERNEL\n"
         "Runs a multiboot v1 ELF32 kernel. Exit status: (code << 1) | 1 for the guest's\n"
         "debug-exit code, 2 bad usage or input, 4 no usable backend, 6 guest shut down,\n"
         "8 internal error, 124 timeout.\n";
}

Checked<Options> ParseOptions(std::span<const char* const> args) {
  Options opt;
  bool have_kernel = false;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      if (have_kernel) {
        return Reject("more than one KERNEL: '" + opt.kernel + "' and '" + std::string(arg) +
                      "'");
      }
      opt.kernel = std::string(arg);
      have_kernel = true;
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      opt.help = true;
      continue;
    }
    if (arg == "--json") {
      opt.json = true;
      continue;
    }
    // Options with a value: "--name value" or "--name=value".
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    static constexpr std::string_view kValued[] = {"--backend", "--smp",   "-m",       "--append",
                                                   "--initrd",  "--cpu",   "--timeout"};
    bool known = false;
    for (std::string_view k : kValued) known = known || name == k;
    if (!known) return Reject("unknown option '" + std::string(arg) + "'");
    if (!value) {
      if (i + 1 >= args.size()) return Reject(std::string(name) + " needs a value");
      value = args[++i];
    }
    if (name == "--backend") {
      if (!IsBackendName(*value)) {
        return Reject("--backend: '" + std::string(*value) + "' is not kvm, mshv, whp or auto");
      }
      opt.backend = std::string(*value);
    } else if (name == "--smp") {
      auto n = ParseNumber(name, *value, 1, kMaxSmp);
      if (!n) return Reject(n.error());
      opt.smp = static_cast<uint32_t>(*n);
    } else if (name == "-m") {
      auto mib = ParseMemory(*value);
      if (!mib) return Reject(mib.error());
      opt.memory_mib = *mib;
    } else if (name == "--append") {
      opt.append = std::string(*value);
    } else if (name == "--initrd") {
      if (value->empty()) return Reject("--initrd: empty file name");
      opt.initrd = std::string(*value);
    } else if (name == "--cpu") {
      auto flags = ParseCpu(*value);
      if (!flags) return Reject(flags.error());
      opt.cpu.insert(opt.cpu.end(), flags->begin(), flags->end());
    } else {  // --timeout
      auto s = ParseNumber(name, *value, 0, kMaxTimeoutS);
      if (!s) return Reject(s.error());
      opt.timeout_s = *s;
    }
  }
  if (!have_kernel && !opt.help) return Reject("no KERNEL given");
  return opt;
}

}  // namespace virt::run
