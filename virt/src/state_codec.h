// StateWriter / StateReader: the little-endian record encoding shared by the VcpuState and
// PartitionState byte forms (docs/state-format.md).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virt/result.h"

namespace virt {

inline constexpr uint32_t kStateFormatVersion = 1;
inline constexpr size_t kStateMaxBackendName = 64;

// Appends fixed-width little-endian fields; records are {u16 part, u16 flags = 0, u32 length,
// payload}.
class StateWriter {
 public:
  // The header: 8-byte magic, u32 version, u32 name length, the name.
  StateWriter(std::string_view magic, std::string_view backend);

  void U8(uint8_t v) { out_.push_back(v); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void Zeros(size_t n) { out_.insert(out_.end(), n, 0); }
  void Bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }

  // Starts a record for `part`; EndRecord fills in its length.
  void BeginRecord(uint16_t part);
  void EndRecord();

  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  void Le(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
  size_t record_start_ = 0;
};

// Reads what StateWriter wrote, every read bounds-checked: after the first failure ok() is
// false and every read returns 0 (the caller reports error()).
class StateReader {
 public:
  explicit StateReader(std::span<const uint8_t> bytes, const char* op)
      : bytes_(bytes), op_(op) {}

  // Checks the magic and version and reads the backend name.
  bool Header(std::string_view magic, std::string& backend);
  // The next record: false at the end (or on error). `payload` reads only the record's bytes.
  bool NextRecord(uint16_t& part, StateReader& payload);

  uint8_t U8();
  bool Bool();  // must be 0 or 1
  uint16_t U16() { return static_cast<uint16_t>(Le(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Le(4)); }
  uint64_t U64() { return Le(8); }
  void Skip(size_t n);
  std::vector<uint8_t> Rest();
  // A u32 count of entries of `entry_size` bytes each that must fill the rest exactly, at most
  // `max` of them.
  uint32_t Count(size_t entry_size, uint32_t max);

  // Fails unless every byte was read.
  void ExpectEnd();
  void Fail(std::string why);

  bool ok() const { return error_.empty(); }
  size_t remaining() const { return bytes_.size() - pos_; }
  Error error() const { return Error::Make(ErrorCode::kInvalidArgument, op_, error_); }

 private:
  uint64_t Le(int bytes);

  std::span<const uint8_t> bytes_;
  const char* op_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace virt
