// RunReport::ToJson: hand-written JSON (no dependency) for one flat-ish object.
#include "virt_run/run_report.h"

#include <cstdio>

#include "virt/vcpu_exit.h"

namespace virt::run {
namespace {

std::string Bool(bool b) { return b ? "true" : "false"; }

// The name ExitName gives the alternative with this index.
template <size_t... I>
const char* KindName(size_t kind, std::index_sequence<I...>) {
  static const char* const kNames[] = {
      ExitName(VcpuExit(std::in_place_index<I>))...};
  return kNames[kind];
}

}  // namespace

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string RunReport::ToJson() const {
  std::string o = "{\"backend\":" + (backend ? JsonString(*backend) : "null");
  o += ",\"vcpus\":" + std::to_string(vcpus);
  o += ",\"memory_mib\":" + std::to_string(memory_mib);
  o += ",\"irqchip\":" + Bool(irqchip);
  o += ",\"pit\":" + Bool(pit);
  o += ",\"pit_note\":" + (pit_note ? JsonString(*pit_note) : "null");
  o += ",\"irq_lines\":" + Bool(irq_lines);
  o += ",\"exits\":{";
  for (size_t k = 0; k < exits.size(); ++k) {
    o += (k ? ",\"" : "\"") + std::string(KindName(k, std::make_index_sequence<ExitStats::kKinds>())) +
         "\":" + std::to_string(exits[k]);
  }
  o += "},\"unclaimed\":{\"io_read\":" + std::to_string(ports.unclaimed_reads) +
       ",\"io_write\":" + std::to_string(ports.unclaimed_writes) +
       ",\"mmio_read\":" + std::to_string(mmio.unclaimed_reads) +
       ",\"mmio_write\":" + std::to_string(mmio.unclaimed_writes) + "}";
  o += ",\"console_bytes\":" + std::to_string(console_bytes);
  o += ",\"first_exit_ns\":" + (first_exit_ns >= 0 ? std::to_string(first_exit_ns) : "null");
  o += ",\"total_ns\":" + std::to_string(total_ns);
  o += ",\"debug_exit_code\":" + (debug_exit_code ? std::to_string(*debug_exit_code) : "null");
  o += ",\"status\":" + std::to_string(status);
  o += ",\"reason\":" + JsonString(reason) + "}";
  return o;
}

}  // namespace virt::run
