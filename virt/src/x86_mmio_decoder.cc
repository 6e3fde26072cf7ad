// x86 MMIO instruction decoder: prefixes, MOV opcodes, ModRM/SIB/displacement length, immediates.
#include "virt/x86_mmio_decoder.h"

#include <cstdio>
#include <string>

namespace virt {
namespace {

constexpr const char* kOp = "DecodeMmioInstruction";

std::string HexBytes(std::span<const uint8_t> bytes) {
  std::string out;
  const size_t n = bytes.size() < kMaxX86InstructionLength ? bytes.size()
                                                           : kMaxX86InstructionLength;
  for (size_t i = 0; i < n; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    if (!out.empty()) out += ' ';
    out += buf;
  }
  return out.empty() ? "(no bytes)" : out;
}

Error Unsupported(std::span<const uint8_t> bytes, const char* why) {
  return Error::Make(ErrorCode::kInvalidArgument, kOp,
                     std::string("unsupported instruction (") + why + "): " + HexBytes(bytes));
}

// The bytes ran out inside the instruction. With 15 or more bytes given that is not a short
// fetch but an instruction no processor executes (over 15 bytes): say so, or a caller would
// fetch more bytes for an instruction that can never decode.
Error Truncated(std::span<const uint8_t> bytes) {
  if (bytes.size() >= kMaxX86InstructionLength) return Unsupported(bytes, "longer than 15 bytes");
  return Error::Make(ErrorCode::kInvalidArgument, kOp,
                     "truncated instruction: " + HexBytes(bytes));
}

// Bounds-checked cursor over the instruction bytes.
class Cursor {
 public:
  explicit Cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  bool Has(size_t n) const { return n <= bytes_.size() - pos_; }
  uint8_t Peek() const { return bytes_[pos_]; }
  uint8_t Next() { return bytes_[pos_++]; }
  uint64_t NextLe(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{bytes_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  void Skip(size_t n) { pos_ += n; }
  size_t pos() const { return pos_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
};

uint64_t SignExtend(uint64_t v, size_t bytes) {
  if (bytes >= 8) return v;
  const unsigned shift = static_cast<unsigned>(64 - 8 * bytes);
  return static_cast<uint64_t>(static_cast<int64_t>(v << shift) >> shift);
}

uint64_t Mask(size_t bytes) { return bytes >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * bytes)) - 1; }

// Bytes of SIB + displacement after a ModRM byte. 0 SIB/disp bytes for mod == 3 (rejected by
// the caller). Returns false when the bytes run out.
bool SkipModRmOperand(Cursor& c, uint8_t modrm, uint8_t address_size) {
  const uint8_t mod = modrm >> 6;
  const uint8_t rm = modrm & 7;
  size_t disp = 0;
  if (address_size == 2) {
    if (mod == 0 && rm == 6) disp = 2;
    if (mod == 1) disp = 1;
    if (mod == 2) disp = 2;
  } else {
    if (rm == 4 && mod != 3) {
      if (!c.Has(1)) return false;
      const uint8_t sib = c.Next();
      if (mod == 0 && (sib & 7) == 5) disp = 4;
    }
    if (mod == 0 && rm == 5) disp = 4;  // disp32 (RIP-relative in 64-bit mode)
    if (mod == 1) disp = 1;
    if (mod == 2) disp = 4;
  }
  if (!c.Has(disp)) return false;
  c.Skip(disp);
  return true;
}

}  // namespace

Result<MmioInstruction> DecodeMmioInstruction(std::span<const uint8_t> bytes, X86Mode mode) {
  Cursor c(bytes);
  bool opsize_prefix = false;
  bool addrsize_prefix = false;
  uint8_t rex = 0;

  // Legacy prefixes, then (64-bit mode) at most one REX right before the opcode.
  for (;;) {
    if (c.pos() >= kMaxX86InstructionLength) return Unsupported(bytes, "longer than 15 bytes");
    if (!c.Has(1)) return Truncated(bytes);
    const uint8_t b = c.Peek();
    if (b == 0x66) {
      opsize_prefix = true;
    } else if (b == 0x67) {
      addrsize_prefix = true;
    } else if (b == 0x26 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x64 || b == 0x65 ||
               b == 0xF0 || b == 0xF2 || b == 0xF3) {
      // segment overrides (the GPA is already known), LOCK, REP: no effect on the decode
    } else if (mode == X86Mode::kLong64 && (b & 0xF0) == 0x40) {
      rex = b;
      c.Skip(1);
      if (!c.Has(1)) return Truncated(bytes);
      const uint8_t after = c.Peek();
      if ((after & 0xF0) == 0x40 || after == 0x66 || after == 0x67 || after == 0x26 ||
          after == 0x2E || after == 0x36 || after == 0x3E || after == 0x64 || after == 0x65 ||
          after == 0xF0 || after == 0xF2 || after == 0xF3) {
        rex = 0;  // a REX not directly before the opcode is ignored by the processor
        continue;
      }
      break;
    } else {
      break;
    }
    c.Skip(1);
  }

  const bool rex_w = (rex & 0x08) != 0;
  const uint8_t rex_r = (rex & 0x04) ? 8 : 0;
  const uint8_t default_size = mode == X86Mode::kReal16 ? 2 : 4;
  const uint8_t opsize = rex_w ? 8 : (opsize_prefix ? static_cast<uint8_t>(6 - default_size)
                                                    : default_size);
  uint8_t address_size = mode == X86Mode::kLong64 ? 8 : default_size;
  if (addrsize_prefix) address_size = mode == X86Mode::kLong64 ? 4 : 6 - default_size;

  MmioInstruction insn;
  uint8_t opcode = c.Next();
  bool two_byte = false;
  if (opcode == 0x0F) {
    if (!c.Has(1)) return Truncated(bytes);
    two_byte = true;
    opcode = c.Next();
  }

  // mov AL/eAX <-> moffs: no ModRM; the address is address_size bytes.
  if (!two_byte && opcode >= 0xA0 && opcode <= 0xA3) {
    if (!c.Has(address_size)) return Truncated(bytes);
    c.Skip(address_size);
    if (c.pos() > kMaxX86InstructionLength) return Unsupported(bytes, "longer than 15 bytes");
    insn.is_write = opcode >= 0xA2;
    insn.width = (opcode & 1) ? opsize : 1;
    insn.register_width = insn.width;
    insn.reg = 0;
    insn.length = static_cast<uint8_t>(c.pos());
    return insn;
  }

  bool known = false;
  if (!two_byte) {
    known = opcode == 0x88 || opcode == 0x89 || opcode == 0x8A || opcode == 0x8B ||
            opcode == 0xC6 || opcode == 0xC7;
  } else {
    known = opcode == 0xB6 || opcode == 0xB7 || opcode == 0xBE || opcode == 0xBF;
  }
  if (!known) return Unsupported(bytes, "not a MOV form");

  if (!c.Has(1)) return Truncated(bytes);
  const uint8_t modrm = c.Next();
  if (!two_byte && (opcode == 0xC6 || opcode == 0xC7) && ((modrm >> 3) & 7) != 0) {
    return Unsupported(bytes, "C6/C7 with ModRM.reg != 0");
  }
  if ((modrm >> 6) == 3) return Unsupported(bytes, "register operand, no memory access");
  if (!SkipModRmOperand(c, modrm, address_size)) return Truncated(bytes);
  if (c.pos() > kMaxX86InstructionLength) return Unsupported(bytes, "longer than 15 bytes");
  const uint8_t reg_field = (modrm >> 3) & 7;

  const bool byte_op = !two_byte && (opcode & 1) == 0;
  if (!two_byte) {
    insn.width = byte_op ? 1 : opsize;
    insn.register_width = insn.width;
    insn.is_write = opcode != 0x8A && opcode != 0x8B;
  } else {
    insn.width = (opcode & 1) ? 2 : 1;
    insn.register_width = opsize;
    insn.is_write = false;
    insn.extension = opcode >= 0xBE ? MmioExtension::kSign : MmioExtension::kZero;
  }

  if (!two_byte && (opcode == 0xC6 || opcode == 0xC7)) {
    const size_t imm_size = insn.width == 8 ? 4 : insn.width;  // imm32 sign-extended for REX.W
    if (!c.Has(imm_size)) return Truncated(bytes);
    insn.operand = MmioOperand::kImmediate;
    insn.immediate = SignExtend(c.NextLe(imm_size), imm_size) & Mask(insn.width);
    if (c.pos() > kMaxX86InstructionLength) return Unsupported(bytes, "longer than 15 bytes");
    insn.length = static_cast<uint8_t>(c.pos());
    return insn;
  }

  insn.operand = MmioOperand::kRegister;
  insn.reg = static_cast<uint8_t>(reg_field | rex_r);
  if (insn.register_width == 1 && rex == 0 && reg_field >= 4) {
    insn.high_byte = true;  // AH, CH, DH, BH
    insn.reg = static_cast<uint8_t>(reg_field - 4);
  }
  insn.length = static_cast<uint8_t>(c.pos());
  return insn;
}

uint64_t ApplyMmioRead(const MmioInstruction& insn, uint64_t old_value, uint64_t value) {
  value &= Mask(insn.width);
  if (insn.extension == MmioExtension::kSign) value = SignExtend(value, insn.width);
  value &= Mask(insn.register_width);
  if (insn.high_byte) return (old_value & ~uint64_t{0xFF00}) | ((value & 0xFF) << 8);
  if (insn.register_width >= 4) return value;  // 32-bit writes zero-extend to 64 bits
  return (old_value & ~Mask(insn.register_width)) | value;
}

uint64_t ApplyIoIn(uint64_t old_rax, std::span<const uint8_t> data) {
  uint64_t value = 0;
  const size_t n = data.size() < 4 ? data.size() : 4;
  for (size_t i = 0; i < n; ++i) value |= uint64_t{data[i]} << (8 * i);
  if (n >= 4) return value;
  const uint64_t mask = (uint64_t{1} << (8 * n)) - 1;
  return (old_rax & ~mask) | value;
}

uint64_t MmioWriteValue(const MmioInstruction& insn, uint64_t register_value) {
  if (insn.operand == MmioOperand::kImmediate) return insn.immediate & Mask(insn.width);
  if (insn.high_byte) return (register_value >> 8) & 0xFF;
  return register_value & Mask(insn.width);
}

}  // namespace virt
