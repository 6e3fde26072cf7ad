// libFuzzer target: virt-run's port and MMIO buses and devices under arbitrary access sequences.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "virt_run/platform.h"
#include "fuzz_check.h"

namespace {

using namespace virt::run;

constexpr uint16_t kCpus = 3;
constexpr uint64_t kRamBytes = 256ull << 20;

// What the devices must answer, from their documented behaviour (the headers' contracts).
struct Model {
  uint32_t latch = 0;        // pc-testdev 0xe0-0xe3
  uint32_t pci_address = 0;  // 0xcf8-0xcfb
  uint8_t lcr = 0, mcr = 0, scr = 0, ier = 0, fcr = 0, dll = 0x0C, dlm = 0;
  uint64_t console_bytes = 0;
  uint16_t selected = 0;
  size_t position = 0;
  std::map<uint16_t, std::vector<uint8_t>> items;
  std::optional<uint32_t> debug_exit;
  uint64_t unclaimed_reads = 0, unclaimed_writes = 0;
  std::map<uint64_t, uint8_t> scratch;  // bytes written so far; the rest reads 0

  Model() {
    auto le = [](uint64_t v, size_t n) {
      std::vector<uint8_t> out(n);
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
      return out;
    };
    items[0x00] = {'Q', 'E', 'M', 'U'};
    items[0x01] = le(1, 4);
    items[0x03] = le(kRamBytes, 8);
    items[0x05] = le(kCpus, 2);
    items[0x11] = le(0, 8);
  }
  bool dlab() const { return (lcr & 0x80) != 0; }

  uint8_t SerialRead(uint64_t reg) const {
    switch (reg) {
      case 0: return dlab() ? dll : 0;
      case 1: return dlab() ? dlm : ier;
      case 2: return (fcr & 1) ? 0xC1 : 0x01;
      case 3: return lcr;
      case 4: return mcr;
      case 5: return Serial8250::kLsrIdle;
      case 6:
        if (mcr & 0x10) {
          return static_cast<uint8_t>(((mcr & 0x02) << 3) | ((mcr & 0x01) << 5) |
                                      ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4));
        }
        return 0xB0;
      default: return scr;
    }
  }
  void SerialWrite(uint64_t reg, uint8_t v) {
    switch (reg) {
      case 0:
        if (dlab()) dll = v; else if ((mcr & 0x10) == 0) ++console_bytes;
        break;
      case 1: if (dlab()) dlm = v; else ier = v & 0x0F; break;
      case 2: fcr = v & 0xC9; break;
      case 3: lcr = v; break;
      case 4: mcr = v & 0x1F; break;
      case 7: scr = v; break;
      default: break;
    }
  }
};

struct Range {
  uint64_t base, size;
};

// The device ranges of the port bus without IRQ lines (Platform::Create, irq_lines null).
std::optional<Range> PortDevice(uint64_t port) {
  for (Range r : {Range{DebugExit::kBase, DebugExit::kPorts}, Range{TestDevice::kBase, TestDevice::kPorts},
                  Range{Serial8250::kCom1Base, Serial8250::kPorts}, Range{FwCfg::kBase, FwCfg::kPorts},
                  Range{PciConfig::kBase, PciConfig::kPorts}}) {
    if (port >= r.base && port < r.base + r.size) return r;
  }
  return std::nullopt;
}

// Where accesses go: each device's base, a little below and above it.
constexpr uint64_t kBases[] = {TestDevice::kBase, DebugExit::kBase, Serial8250::kCom1Base,
                               FwCfg::kBase, PciConfig::kBase, 0x80};

void PortAccess(Bus& bus, Model& m, bool write, uint64_t port, std::span<uint8_t> bytes) {
  const std::optional<Range> dev = PortDevice(port);
  const size_t inside = dev ? std::min<uint64_t>(bytes.size(), dev->base + dev->size - port) : 0;
  const uint64_t off = dev ? port - dev->base : 0;
  if (write) {
    FUZZ_CHECK(bus.Write(port, bytes).has_value());
    if (!dev) {
      ++m.unclaimed_writes;
      return;
    }
    for (size_t i = 0; i < inside; ++i) {
      const uint64_t lane = off + i;
      if (dev->base == TestDevice::kBase && lane < 4) {
        m.latch = (m.latch & ~(0xFFu << (8 * lane))) | (uint32_t{bytes[i]} << (8 * lane));
      } else if (dev->base == PciConfig::kBase && lane < 4) {
        m.pci_address = (m.pci_address & ~(0xFFu << (8 * lane))) | (uint32_t{bytes[i]} << (8 * lane));
      } else if (dev->base == Serial8250::kCom1Base) {
        m.SerialWrite(lane, bytes[i]);
      }
    }
    if (dev->base == FwCfg::kBase && off == 0) {
      m.selected = static_cast<uint16_t>(bytes[0] | (inside > 1 ? bytes[1] << 8 : 0));
      m.position = 0;
    }
    if (dev->base == DebugExit::kBase && !m.debug_exit) {
      uint32_t v = 0;
      for (size_t i = 0; i < inside && i < 4; ++i) v |= uint32_t{bytes[i]} << (8 * i);
      m.debug_exit = v;
    }
    return;
  }
  std::vector<uint8_t> got(bytes.size(), 0x5A);
  FUZZ_CHECK(bus.Read(port, got).has_value());
  if (!dev) ++m.unclaimed_reads;
  for (size_t i = 0; i < got.size(); ++i) {
    uint8_t want = 0xFF;  // unclaimed, past the device's end, or a write-only lane
    const uint64_t lane = off + i;
    if (i < inside) {
      if (dev->base == TestDevice::kBase && lane < 4) want = static_cast<uint8_t>(m.latch >> (8 * lane));
      if (dev->base == PciConfig::kBase && lane < 4) want = static_cast<uint8_t>(m.pci_address >> (8 * lane));
      if (dev->base == Serial8250::kCom1Base) want = m.SerialRead(lane);
      // fw_cfg: an access is one register's, the one it starts at (a read at the selector
      // reads nothing, whatever its width); the data port gives one item byte per byte read.
      if (dev->base == FwCfg::kBase && off == 1) {
        auto it = m.items.find(m.selected);
        want = it != m.items.end() && m.position < it->second.size() ? it->second[m.position] : 0;
        ++m.position;
      }
    }
    FUZZ_CHECK(got[i] == want);
  }
}

void MmioAccess(Bus& bus, Model& m, bool write, uint64_t offset, std::span<uint8_t> bytes) {
  const uint64_t address = MmioScratch::kBase + offset;
  const size_t inside = offset < MmioScratch::kSize
                            ? std::min<uint64_t>(bytes.size(), MmioScratch::kSize - offset) : 0;
  if (write) {
    FUZZ_CHECK(bus.Write(address, bytes).has_value());
    if (offset >= MmioScratch::kSize) ++m.unclaimed_writes;
    for (size_t i = 0; i < inside; ++i) m.scratch[offset + i] = bytes[i];
    return;
  }
  std::vector<uint8_t> got(bytes.size(), 0x5A);
  FUZZ_CHECK(bus.Read(address, got).has_value());
  if (offset >= MmioScratch::kSize) ++m.unclaimed_reads;
  for (size_t i = 0; i < got.size(); ++i) {
    auto it = m.scratch.find(offset + i);
    FUZZ_CHECK(got[i] == (i >= inside ? 0xFF : it == m.scratch.end() ? 0 : it->second));
  }
}

}  // namespace

// Input: accesses of 4 bytes plus the written value: [op] [target] [offset lo] [offset hi]
// [value...]. op bit 0: write; bit 1: MMIO (scratch) instead of ports; bits 3:2: size 1/2/4/8.
// Port: kBases[target % 6] + (offset lo % 16) - 4. MMIO: scratch base + 16-bit offset + 0..3.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::FILE* sink = std::fopen("/dev/null", "w");
  Console console(sink);
  StopController stop;
  auto platform = Platform::Create({.cpus = kCpus, .ram_bytes = kRamBytes}, console, stop);
  FUZZ_CHECK(platform.has_value());
  Bus& ports = (*platform)->ports();
  Bus& mmio = (*platform)->mmio();
  Model m;
  size_t at = 0;
  while (at + 4 <= size) {
    const uint8_t op = data[at];
    const bool write = op & 1;
    const size_t width = size_t{1} << ((op >> 2) & 3);
    uint8_t value[8] = {};
    if (write) {
      if (at + 4 + width > size) break;
      std::memcpy(value, data + at + 4, width);
    }
    if (op & 2) {
      const uint64_t offset = (data[at + 2] | (data[at + 3] << 8)) + (data[at + 1] & 3);
      MmioAccess(mmio, m, write, offset, {value, width});
    } else {
      const uint64_t port = kBases[data[at + 1] % 6] + (data[at + 2] % 16) - 4;
      PortAccess(ports, m, write, port, {value, width});
    }
    at += 4 + (write ? width : 0);
  }
  // The console got exactly the THR bytes; the debug-exit port's first write won.
  FUZZ_CHECK(console.bytes() == m.console_bytes);
  FUZZ_CHECK(stop.stopped() == m.debug_exit.has_value());
  if (m.debug_exit) FUZZ_CHECK(stop.verdict().debug_exit_code == m.debug_exit);
  FUZZ_CHECK(ports.counters().unclaimed_reads + mmio.counters().unclaimed_reads == m.unclaimed_reads);
  FUZZ_CHECK(ports.counters().unclaimed_writes + mmio.counters().unclaimed_writes == m.unclaimed_writes);
  FUZZ_CHECK((*platform)->mmio().Claimant(MmioScratch::kBase).has_value());
  return 0;
}
