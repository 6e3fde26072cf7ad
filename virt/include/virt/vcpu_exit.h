// VcpuExit: why Vcpu::Run returned, decoded into one type shared by every backend.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>

namespace virt {

// Port I/O. For an OUT, `data` holds size * count bytes written by the guest. For an IN, the
// VMM answers with Vcpu::CompleteIoIn before the next Run. `data` stays valid until that Run.
struct IoExit {
  uint16_t port = 0;
  uint8_t size = 0;  // 1, 2 or 4 bytes per element
  bool is_write = false;
  uint32_t count = 1;  // > 1 for string I/O (rep ins/outs)
  std::span<const uint8_t> data;

  // The first element as a little-endian integer (OUT only).
  uint32_t value() const {
    uint32_t v = 0;
    for (size_t i = 0; i < size && i < data.size(); ++i) v |= uint32_t{data[i]} << (8 * i);
    return v;
  }
};

// A guest access to an address with no memory behind it. For a read, the VMM answers with
// Vcpu::CompleteMmioRead before the next Run.
struct MmioExit {
  uint64_t address = 0;
  uint8_t size = 0;  // 1, 2, 4 or 8
  bool is_write = false;
  uint64_t value = 0;  // the written value (writes only)
};

struct HaltExit {};       // HLT with no in-kernel interrupt controller to wait on
struct ShutdownExit {};   // triple fault or similar: the guest is dead
struct CancelledExit {};  // Vcpu::Cancel kicked the vCPU out (or stopped it before entry)

// The hypervisor could not handle something internally (e.g. KVM emulation failure).
struct InternalErrorExit {
  uint32_t suberror = 0;
  std::array<uint64_t, 4> data{};
  uint32_t ndata = 0;
};

// Any exit reason this library does not decode, with the backend's raw reason.
struct UnknownExit {
  uint32_t reason = 0;
};

// A guest access the backend had to emulate from the instruction bytes (MSHV memory intercepts,
// WHP) with an instruction the decoder does not handle, or string/REP port I/O. The guest is
// stopped at the instruction (RIP not advanced); running again re-executes it.
struct UnsupportedInstructionExit {
  uint64_t address = 0;  // the guest physical address (MMIO) or port (I/O) accessed
  std::array<uint8_t, 16> bytes{};
  uint8_t length = 0;           // valid entries in bytes
  const char* reason = "";      // static text, e.g. "not a MOV form", "string I/O"
};

using VcpuExit = std::variant<IoExit, MmioExit, HaltExit, ShutdownExit, CancelledExit,
                              InternalErrorExit, UnknownExit, UnsupportedInstructionExit>;

// "io", "mmio", "halt", ... for logs.
const char* ExitName(const VcpuExit& exit);

}  // namespace virt
