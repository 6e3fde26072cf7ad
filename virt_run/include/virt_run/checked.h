// Checked<T>: the outcome of validating user input (command line, kernel, initrd): a value or a
// one-line message for the user. virt-run exits 2 on any of them.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <utility>

namespace virt::run {

template <typename T>
class [[nodiscard]] Checked : public std::expected<T, std::string> {
 public:
  using std::expected<T, std::string>::expected;
  Checked(std::expected<T, std::string> other)  // NOLINT
      : std::expected<T, std::string>(std::move(other)) {}
};

// The rejection: `return Reject("segment 2: p_filesz > p_memsz");`.
inline std::unexpected<std::string> Reject(std::string message) {
  return std::unexpected<std::string>(std::move(message));
}

// "0x1badb002": addresses and sizes in messages.
std::string Hex(uint64_t value);

}  // namespace virt::run
