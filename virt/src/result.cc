// Formatting of virt::Error for logs and user-facing messages.
#include "virt/result.h"

#include <cstring>
#include <cstdio>

namespace virt {
namespace {

std::string Hex(const char* fmt, int64_t value) {
  char buf[48];
  std::snprintf(buf, sizeof buf, fmt, static_cast<unsigned>(value));
  return buf;
}

}  // namespace

const char* ToString(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kNative: return "native error";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kOverlap: return "overlap";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kExhausted: return "exhausted";
    case ErrorCode::kAlreadyReleased: return "already released";
    case ErrorCode::kPartitionGone: return "partition gone";
    case ErrorCode::kFailedPrecondition: return "failed precondition";
    case ErrorCode::kUnavailable: return "unavailable";
  }
  return "unknown";
}

std::string Error::Message() const {
  std::string out = operation;
  out += ": ";
  switch (domain) {
    case NativeDomain::kErrno:
      out += "errno " + std::to_string(native_code) + " (" +
             std::strerror(static_cast<int>(native_code)) + ")";
      break;
    case NativeDomain::kHresult:
      out += Hex("HRESULT 0x%08x", native_code);
      break;
    case NativeDomain::kHvStatus:
      out += Hex("hypervisor status 0x%04x", native_code);
      break;
    case NativeDomain::kNone:
      out += ToString(code);
      break;
  }
  if (!detail.empty()) {
    out += ": ";
    out += detail;
  }
  return out;
}

Error Error::Errno(const char* op, int err, std::string detail) {
  return Error{ErrorCode::kNative, op, err, NativeDomain::kErrno, std::move(detail)};
}

Error Error::Make(ErrorCode code, const char* op, std::string detail) {
  return Error{code, op, 0, NativeDomain::kNone, std::move(detail)};
}

}  // namespace virt
