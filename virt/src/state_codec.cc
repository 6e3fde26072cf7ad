// StateWriter / StateReader: bounds-checked little-endian records.
#include "state_codec.h"

#include <cstdio>

namespace virt {

StateWriter::StateWriter(std::string_view magic, std::string_view backend) {
  out_.insert(out_.end(), magic.begin(), magic.end());
  U32(kStateFormatVersion);
  U32(static_cast<uint32_t>(backend.size()));
  out_.insert(out_.end(), backend.begin(), backend.end());
}

void StateWriter::BeginRecord(uint16_t part) {
  U16(part);
  U16(0);
  record_start_ = out_.size();
  U32(0);  // the length, filled in by EndRecord
}

void StateWriter::EndRecord() {
  const auto length = static_cast<uint32_t>(out_.size() - record_start_ - 4);
  for (int i = 0; i < 4; ++i) out_[record_start_ + i] = static_cast<uint8_t>(length >> (8 * i));
}

void StateReader::Fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

uint64_t StateReader::Le(int bytes) {
  if (!ok()) return 0;
  if (remaining() < static_cast<size_t>(bytes)) {
    Fail("truncated at byte " + std::to_string(pos_));
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{bytes_[pos_ + i]} << (8 * i);
  pos_ += static_cast<size_t>(bytes);
  return v;
}

uint8_t StateReader::U8() { return static_cast<uint8_t>(Le(1)); }

bool StateReader::Bool() {
  const uint8_t v = U8();
  if (v > 1) Fail("a flag byte is " + std::to_string(v) + ", not 0 or 1");
  return v == 1;
}

void StateReader::Skip(size_t n) {
  if (!ok()) return;
  if (remaining() < n) {
    Fail("truncated at byte " + std::to_string(pos_));
    return;
  }
  pos_ += n;
}

std::vector<uint8_t> StateReader::Rest() {
  if (!ok()) return {};
  std::vector<uint8_t> out(bytes_.begin() + static_cast<std::ptrdiff_t>(pos_), bytes_.end());
  pos_ = bytes_.size();
  return out;
}

uint32_t StateReader::Count(size_t entry_size, uint32_t max) {
  const uint32_t n = U32();
  if (!ok()) return 0;
  if (n > max) {
    Fail(std::to_string(n) + " entries, at most " + std::to_string(max));
    return 0;
  }
  if (remaining() != size_t{n} * entry_size) {
    Fail(std::to_string(n) + " entries of " + std::to_string(entry_size) + " bytes, but " +
         std::to_string(remaining()) + " bytes follow");
    return 0;
  }
  return n;
}

void StateReader::ExpectEnd() {
  if (ok() && remaining() != 0) Fail(std::to_string(remaining()) + " unexpected trailing bytes");
}

bool StateReader::Header(std::string_view magic, std::string& backend) {
  if (bytes_.size() < magic.size() ||
      std::memcmp(bytes_.data(), magic.data(), magic.size()) != 0) {
    Fail("not a " + std::string(magic) + " blob (bad magic)");
    return false;
  }
  pos_ = magic.size();
  const uint32_t version = U32();
  if (ok() && version != kStateFormatVersion) {
    Fail("format version " + std::to_string(version) + ", this library reads version " +
         std::to_string(kStateFormatVersion));
    return false;
  }
  const uint32_t n = U32();
  if (ok() && (n == 0 || n > kStateMaxBackendName)) {
    Fail("backend name of " + std::to_string(n) + " bytes");
    return false;
  }
  if (ok() && remaining() < n) Fail("truncated backend name");
  if (!ok()) return false;
  backend.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
  pos_ += n;
  for (char c : backend) {
    if (c < 0x21 || c > 0x7e) {
      Fail("backend name is not printable ASCII");
      return false;
    }
  }
  return true;
}

bool StateReader::NextRecord(uint16_t& part, StateReader& payload) {
  if (!ok() || remaining() == 0) return false;
  part = U16();
  const uint16_t flags = U16();
  const uint32_t length = U32();
  if (!ok()) return false;
  if (flags != 0) {
    Fail("record flags " + std::to_string(flags) + " (this version writes 0)");
    return false;
  }
  if (remaining() < length) {
    Fail("record of part " + std::to_string(part) + " claims " + std::to_string(length) +
         " bytes, " + std::to_string(remaining()) + " remain");
    return false;
  }
  payload = StateReader(bytes_.subspan(pos_, length), op_);
  pos_ += length;
  return true;
}

}  // namespace virt
