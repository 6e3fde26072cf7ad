// Error values and the [[nodiscard]] Result<T> every fallible virt call returns (no exceptions).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <utility>

namespace virt {

// What went wrong, independent of the backend. kNative means "the OS said no": see native_code.
enum class ErrorCode : uint8_t {
  kNative,              // an ioctl / WHv call failed; native_code holds errno or HRESULT
  kInvalidArgument,     // bad input: unaligned, zero-sized, out of range, malformed MSI ...
  kOverlap,             // a memory region overlaps one already mapped
  kNotFound,            // no such region / route / backend
  kExhausted,           // a fixed-capacity table (GSIs, memory slots) is full
  kAlreadyReleased,     // double release / double free
  kPartitionGone,       // the object outlived the partition it belongs to
  kFailedPrecondition,  // call made in the wrong state (e.g. completing an IN that is not pending)
  kUnavailable,         // backend not built, device missing, permission denied, API mismatch
};

// Which namespace native_code lives in.
enum class NativeDomain : uint8_t { kNone, kErrno, kHresult, kHvStatus };

const char* ToString(ErrorCode code) noexcept;

// An error: the operation that failed (a static string such as "KVM_SET_GSI_ROUTING"), a
// portable code, the native code (errno / HRESULT / hypervisor status) and optional detail text.
struct Error {
  ErrorCode code = ErrorCode::kNative;
  const char* operation = "";
  int64_t native_code = 0;
  NativeDomain domain = NativeDomain::kNone;
  std::string detail;

  // "KVM_SET_GSI_ROUTING: errno 22 (Invalid argument)" and similar, for logs and users.
  std::string Message() const;

  static Error Errno(const char* op, int err, std::string detail = {});
  static Error Make(ErrorCode code, const char* op, std::string detail = {});
};

// std::expected with [[nodiscard]]: ignoring a fallible call's outcome is a compile warning.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  // User-provided, so `return {}` (and Ok()) is a plain default construction: with the implicit
  // one, value-initialisation zero-fills the whole object (the Error's bytes too, 72 in all)
  // before constructing it, on every successful return of every hot call.
  constexpr Result() noexcept(noexcept(std::expected<T, Error>())) : std::expected<T, Error>() {}
  Result(std::expected<T, Error> other) : std::expected<T, Error>(std::move(other)) {}  // NOLINT
  Result(Error error) : std::expected<T, Error>(std::unexpect, std::move(error)) {}     // NOLINT
};

using Status = Result<void>;

inline Status Ok() { return {}; }

}  // namespace virt
