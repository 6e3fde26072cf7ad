// virt-run's process exit statuses (CONTRACT.md). Every failure of virt-run itself is even, so it
// never looks like a guest verdict, which is odd.
#pragma once

#include <cstdint>

namespace virt::run {

inline constexpr int kStatusUsage = 2;      // bad command line, kernel or initrd
inline constexpr int kStatusNoBackend = 4;  // no usable hypervisor
inline constexpr int kStatusShutdown = 6;   // the guest shut down (triple fault)
inline constexpr int kStatusInternal = 8;   // a hypervisor call failed, or an unhandled exit
inline constexpr int kStatusTimeout = 124;  // --timeout expired (as coreutils timeout)

// QEMU isa-debug-exit: the guest's code c ends the process with (c << 1) | 1, truncated to
// the 8 bits a process status has.
constexpr int DebugExitStatus(uint32_t code) { return static_cast<int>(((code << 1) | 1) & 0xFF); }

}  // namespace virt::run
