// The tiny test guest (test_guest.S) and how to load and start it on any backend.
#pragma once

#include <cstdint>
#include <span>

#include "virt/result.h"
#include "virt/vcpu.h"

namespace virt::guest {

inline constexpr uint16_t kHelloPort = 0x10;   // OUT, 1 byte per character
inline constexpr uint16_t kModePort = 0x11;    // IN, 4 bytes: the mode below
inline constexpr uint16_t kEchoPort = 0x12;    // OUT, 4 bytes: the value read from kMmioAddress
inline constexpr uint16_t kReadyPort = 0x13;   // OUT: APIC enabled, waiting for interrupts
inline constexpr uint16_t kVectorPort = 0x14;  // OUT, 4 bytes: the vector taken (see below)
inline constexpr uint16_t kLoopPort = 0x15;    // OUT, 1 byte, over and over (kModeOutLoop)
inline constexpr uint16_t kCpuidPort = 0x16;   // OUT, 4 bytes: CPUID.1 EBX, ECX, EDX (kModeCpuid)
inline constexpr uint16_t kCountPort = 0x17;   // IN, 4 bytes: how many rings (kModeDoorbell)
inline constexpr uint64_t kDoorbellAddress = 0xd0001000;  // 4-byte MMIO write: the ring number
inline constexpr uint16_t kIdPort = 0x18;      // IN, 4 bytes: the vCPU's index (kModeSnapshot)
// kModeSnapshot's memory: per vCPU n, 32-bit words at these + 4n.
inline constexpr uint64_t kCountersAddress = 0x6000;  // incremented by the loop
inline constexpr uint64_t kTicksAddress = 0x6040;     // incremented by each timer interrupt
inline constexpr uint64_t kTakenAddress = 0x6080;     // the last non-timer vector taken
inline constexpr uint8_t kTimerVector = 0x80;
inline constexpr uint64_t kMmioAddress = 0xd0000000;
// The guest knows a vector from the IDT entry it came through, not from the APIC. It reports an
// interrupt (vector >= 32) as the vector and EOIs it; an exception (vector < 32) as
// kExceptionBase + vector, without an EOI.
inline constexpr uint32_t kExceptionBase = 0x100;

inline constexpr uint32_t kModeHalt = 0;        // cli; hlt after the MMIO echo
inline constexpr uint32_t kModeInterrupts = 1;  // enable the APIC and report interrupts
inline constexpr uint32_t kModeSpin = 2;        // say kReadyPort, then spin without exits
inline constexpr uint32_t kModeOutLoop = 3;     // `out %al, $kLoopPort` forever: one exit each
inline constexpr uint32_t kModeException = 4;   // as kModeInterrupts, with a #UD after kReadyPort
inline constexpr uint32_t kModeCpuid = 5;       // CPUID.1 EBX/ECX/EDX to kCpuidPort, then hlt
// Reads N from kCountPort, then N times: rings kDoorbellAddress and waits for any interrupt
// (EOI'd silently); then reports N to kVectorPort and halts.
inline constexpr uint32_t kModeDoorbell = 6;
// The snapshot workload on every vCPU started at the entry: SSE/AVX state on (no vector
// instruction runs: the x87/SSE/AVX registers keep what the VMM loaded), the LAPIC timer
// periodic, then count in memory forever (see test_guest.S).
inline constexpr uint32_t kModeSnapshot = 7;
// Benchmark modes. kModePortDoorbell: rings kDoorbellPort (a 4-byte OUT of the ring number), waits
// for any interrupt (EOI'd silently), rings again, forever; an interrupt on kStopVector ends it:
// it reports the rings answered to kVectorPort and halts.
inline constexpr uint32_t kModePortDoorbell = 8;
inline constexpr uint16_t kDoorbellPort = 0x19;
inline constexpr uint8_t kStopVector = 0x41;
// kModeDirtyPages: forever writes the first word of kDirtyPages pages kDirtyStride apart from
// kDirtyBase (memory the VMM maps there), then reports the round with a 4-byte OUT to
// kDirtyPort.
inline constexpr uint32_t kModeDirtyPages = 9;
inline constexpr uint16_t kDirtyPort = 0x1a;
inline constexpr uint64_t kDirtyBase = 0x40000000;
inline constexpr uint32_t kDirtyPages = 1024;
inline constexpr uint64_t kDirtyStride = 0x100000;

inline constexpr uint64_t kLoadAddress = 0x1000;
inline constexpr uint64_t kIdtBase = 0x3000;      // the image ends below it (checked when built)
inline constexpr uint64_t kMemorySize = 2 << 20;  // the guest uses 0x1000-0x9000

// The assembled guest image, to be copied to kLoadAddress.
std::span<const uint8_t> Image();

// Copies the image into `memory` (the host view of guest physical 0..kMemorySize).
Status Load(std::span<uint8_t> memory);

// Puts the vCPU in flat 32-bit protected mode (base 0, 4 GiB segments) at the image's entry.
Status Start(Vcpu& vcpu);

}  // namespace virt::guest
