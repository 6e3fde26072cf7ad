// DoorbellMatch: which guest writes ring a doorbell (address space, address, length, data).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "virt/result.h"
#include "virt/vcpu_exit.h"

namespace virt {

enum class DoorbellSpace : uint8_t { kPio, kMmio };

// DoorbellMatch::length for "a write of any length at the address" (KVM and MSHV: len 0; WHP:
// without MatchOnLength). A backend that cannot match any length refuses it
// (Doorbells::supports_any_length(); KVM without KVM_CAP_IOEVENTFD_ANY_LENGTH).
inline constexpr uint32_t kDoorbellAnyLength = UINT32_MAX;

// A guest write rings the doorbell when it goes to `space` at exactly `address`, is exactly
// `length` bytes wide (unless kDoorbellAnyLength), and, with `data`, writes exactly that value.
// Reads never ring; a write that only overlaps the address does not either (KVM_IOEVENTFD's
// rule, kept by every backend and the user-mode fallback).
struct DoorbellMatch {
  DoorbellSpace space = DoorbellSpace::kMmio;
  uint64_t address = 0;
  uint32_t length = 4;             // 1, 2, 4, 8 (MMIO only) or kDoorbellAnyLength
  std::optional<uint64_t> data;    // match only this value (needs a fixed length)

  bool operator==(const DoorbellMatch&) const = default;

  // Checks the match on its own: a length of 1/2/4/8 (8 only for MMIO; 0 is refused as
  // zero-length), an MMIO address aligned to the length, a port range within 0..0xffff, no
  // address wrap, data only with a fixed length and no wider than it. kInvalidArgument naming
  // the problem; `op` is the operation named in the error.
  Status Validate(const char* op) const;

  // Whether two registrations cannot coexist (KVM's collision rule, used by every backend):
  // same space and address, and either one takes any length, or the lengths are equal and
  // either one has no data match or both match the same value.
  bool CollidesWith(const DoorbellMatch& other) const;

  // Whether this guest write rings the doorbell. String I/O (count > 1) never does.
  bool Matches(const IoExit& io) const;
  bool Matches(const MmioExit& mmio) const;
};

// "mmio 0xfeb00000/4 = 0x1" and similar, for errors and logs.
std::string Describe(const DoorbellMatch& match);

}  // namespace virt
