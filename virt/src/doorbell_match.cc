// DoorbellMatch: validation, KVM's collision rule and matching of write exits.
#include "virt/doorbell_match.h"

#include <cstdio>
#include <string>

namespace virt {
namespace {

bool FixedLength(uint32_t length) {
  return length == 1 || length == 2 || length == 4 || length == 8;
}

uint64_t Mask(uint32_t bytes) { return bytes >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1; }

Error Invalid(const char* op, const DoorbellMatch& m, const char* why) {
  return Error::Make(ErrorCode::kInvalidArgument, op, Describe(m) + ": " + why);
}

}  // namespace

Status DoorbellMatch::Validate(const char* op) const {
  const bool any = length == kDoorbellAnyLength;
  if (length == 0) return Invalid(op, *this, "zero-length doorbell");
  if (!any && !FixedLength(length)) return Invalid(op, *this, "length must be 1, 2, 4 or 8");
  if (space == DoorbellSpace::kPio) {
    if (length == 8) return Invalid(op, *this, "port I/O is at most 4 bytes wide");
    const uint64_t end = address + (any ? 1 : length);
    if (address > 0xffff || end > 0x10000) return Invalid(op, *this, "beyond port 0xffff");
  } else {
    if (!any && address % length != 0) return Invalid(op, *this, "unaligned MMIO doorbell");
    if (!any && address + length < address) return Invalid(op, *this, "address range wraps");
  }
  if (data) {
    if (any) return Invalid(op, *this, "a data match needs a fixed length");
    if ((*data & ~Mask(length)) != 0) return Invalid(op, *this, "data wider than the length");
  }
  return Ok();
}

bool DoorbellMatch::CollidesWith(const DoorbellMatch& o) const {
  if (space != o.space || address != o.address) return false;
  if (length == kDoorbellAnyLength || o.length == kDoorbellAnyLength) return true;
  if (length != o.length) return false;
  return !data || !o.data || *data == *o.data;
}

bool DoorbellMatch::Matches(const IoExit& io) const {
  if (space != DoorbellSpace::kPio || !io.is_write || io.count != 1 || io.port != address) {
    return false;
  }
  if (length != kDoorbellAnyLength && io.size != length) return false;
  return !data || io.value() == *data;
}

bool DoorbellMatch::Matches(const MmioExit& mmio) const {
  if (space != DoorbellSpace::kMmio || !mmio.is_write || mmio.address != address) return false;
  if (length != kDoorbellAnyLength && mmio.size != length) return false;
  return !data || (mmio.value & Mask(mmio.size)) == *data;
}

std::string Describe(const DoorbellMatch& m) {
  char buf[96];
  const char* space = m.space == DoorbellSpace::kPio ? "pio" : "mmio";
  const auto addr = static_cast<unsigned long long>(m.address);
  int n = m.length == kDoorbellAnyLength
              ? std::snprintf(buf, sizeof buf, "%s 0x%llx/any", space, addr)
              : std::snprintf(buf, sizeof buf, "%s 0x%llx/%u", space, addr, m.length);
  if (m.data && n > 0 && static_cast<size_t>(n) < sizeof buf) {
    std::snprintf(buf + n, sizeof buf - static_cast<size_t>(n), " = 0x%llx",
                  static_cast<unsigned long long>(*m.data));
  }
  return buf;
}

}  // namespace virt
