// libFuzzer target: DecodeMmioInstruction on arbitrary bytes in each mode, and the value helpers.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "virt/x86_mmio_decoder.h"
#include "fuzz_check.h"

namespace {

bool IsAccessSize(uint8_t n) { return n == 1 || n == 2 || n == 4 || n == 8; }
uint64_t Mask(uint8_t bytes) { return bytes >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1; }

// Decodes `bytes` from an exactly-sized heap copy, so ASan sees any read past the end.
virt::Result<virt::MmioInstruction> Decode(std::span<const uint8_t> bytes, virt::X86Mode mode) {
  std::vector<uint8_t> copy(bytes.begin(), bytes.end());
  return virt::DecodeMmioInstruction(copy, mode);
}

bool IsTruncated(const virt::Error& e) { return e.detail.starts_with("truncated instruction"); }

void CheckInstruction(const virt::MmioInstruction& insn, std::span<const uint8_t> bytes,
                      virt::X86Mode mode) {
  FUZZ_CHECK(IsAccessSize(insn.width));
  FUZZ_CHECK(IsAccessSize(insn.register_width));
  FUZZ_CHECK(insn.width <= insn.register_width);
  FUZZ_CHECK(insn.length >= 1 && insn.length <= bytes.size());
  FUZZ_CHECK(insn.length <= virt::kMaxX86InstructionLength);
  FUZZ_CHECK(insn.reg <= 15);
  if (mode != virt::X86Mode::kLong64) {
    // No REX outside 64-bit mode: 8 GPRs, no 64-bit operand.
    FUZZ_CHECK(insn.reg <= 7);
    FUZZ_CHECK(insn.register_width <= 4);
  }
  if (insn.high_byte) FUZZ_CHECK(insn.reg <= 3 && insn.register_width == 1);
  if (insn.operand == virt::MmioOperand::kImmediate) {
    FUZZ_CHECK(insn.is_write);
    FUZZ_CHECK((insn.immediate & ~Mask(insn.width)) == 0);
  } else {
    FUZZ_CHECK(insn.immediate == 0);
  }
  if (insn.extension != virt::MmioExtension::kNone) {
    FUZZ_CHECK(!insn.is_write && insn.width <= 2);
  } else {
    FUZZ_CHECK(insn.width == insn.register_width);
  }

  // The instruction is exactly its first `length` bytes: what follows does not matter, and
  // every shorter prefix is reported truncated (not mis-decoded as something shorter).
  auto exact = Decode(bytes.first(insn.length), mode);
  FUZZ_CHECK(exact.has_value() && *exact == insn);
  for (size_t k = 0; k < insn.length; ++k) {
    auto partial = Decode(bytes.first(k), mode);
    FUZZ_CHECK(!partial.has_value() && IsTruncated(partial.error()));
  }
}

// ApplyMmioRead / MmioWriteValue keep to the register's width and the access's bytes.
void CheckValues(const virt::MmioInstruction& insn, uint64_t old_value, uint64_t value) {
  const uint64_t written = virt::MmioWriteValue(insn, value);
  FUZZ_CHECK((written & ~Mask(insn.width)) == 0);
  if (insn.is_write) return;
  const uint64_t after = virt::ApplyMmioRead(insn, old_value, value);
  if (insn.high_byte) {
    FUZZ_CHECK((after & ~uint64_t{0xFF00}) == (old_value & ~uint64_t{0xFF00}));
    FUZZ_CHECK(((after >> 8) & 0xFF) == (value & 0xFF));
    return;
  }
  if (insn.register_width >= 4) {
    FUZZ_CHECK((after & ~Mask(insn.register_width)) == 0);
  } else {
    FUZZ_CHECK((after & ~Mask(insn.register_width)) == (old_value & ~Mask(insn.register_width)));
  }
  FUZZ_CHECK((after & Mask(insn.width)) == (value & Mask(insn.width)));
  if (insn.extension == virt::MmioExtension::kZero) {
    FUZZ_CHECK((after & Mask(insn.register_width) & ~Mask(insn.width)) == 0);
  }
}

}  // namespace

// Input: byte 0 picks the mode (and, with the next 16 bytes, the values for the helpers),
// the rest is the instruction stream.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto mode = static_cast<virt::X86Mode>(data[0] % 3);
  const std::span<const uint8_t> bytes(data + 1, size - 1);

  auto insn = Decode(bytes, mode);
  if (!insn) {
    // Garbage is an error value naming why.
    FUZZ_CHECK(insn.error().code == virt::ErrorCode::kInvalidArgument);
    FUZZ_CHECK(IsTruncated(insn.error()) ||
               insn.error().detail.starts_with("unsupported instruction"));
    // Truncation means the bytes ran out: no more than a maximal instruction was there.
    if (IsTruncated(insn.error())) FUZZ_CHECK(bytes.size() < virt::kMaxX86InstructionLength);
  } else {
    CheckInstruction(*insn, bytes, mode);
    uint64_t old_value = 0, value = 0;
    const size_t n = bytes.size() - insn->length;
    const uint8_t* tail = bytes.data() + insn->length;
    std::memcpy(&old_value, tail, n < 8 ? n : 8);
    if (n > 8) std::memcpy(&value, tail + 8, n - 8 < 8 ? n - 8 : 8);
    CheckValues(*insn, old_value, value);
  }

  // ApplyIoIn: an IN of 1, 2 or 4 bytes.
  if (bytes.size() >= 9) {
    uint64_t old_rax = 0;
    std::memcpy(&old_rax, bytes.data(), 8);
    const size_t width = size_t{1} << (bytes[8] % 3);
    const size_t n = bytes.size() - 9 < width ? bytes.size() - 9 : width;
    std::vector<uint8_t> in(bytes.begin() + 9, bytes.begin() + 9 + static_cast<long>(n));
    const uint64_t rax = virt::ApplyIoIn(old_rax, in);
    if (n == 4) {
      FUZZ_CHECK((rax >> 32) == 0);
    } else {
      FUZZ_CHECK((rax & ~Mask(static_cast<uint8_t>(n))) == (old_rax & ~Mask(static_cast<uint8_t>(n))));
    }
    for (size_t i = 0; i < n; ++i) FUZZ_CHECK(((rax >> (8 * i)) & 0xFF) == in[i]);
  }
  return 0;
}
