// x86 MMIO instruction decoder: the MOV forms guests use for device registers, for backends that
// only get the faulting instruction's bytes (MSHV memory intercepts, WHP).
#pragma once

#include <cstdint>
#include <span>

#include "virt/result.h"

namespace virt {

// The processor mode the instruction was fetched in (decides default operand/address sizes and
// whether 0x40-0x4F are REX prefixes).
enum class X86Mode : uint8_t {
  kReal16,       // real mode / 16-bit code segment
  kProtected32,  // 32-bit protected or compatibility mode
  kLong64,       // 64-bit mode
};

// Where a write's value comes from / where a read's value goes.
enum class MmioOperand : uint8_t {
  kRegister,   // general-purpose register `reg`
  kImmediate,  // `immediate` (writes only)
};

// How a read value of `width` bytes lands in a destination register of `register_width` bytes.
enum class MmioExtension : uint8_t { kNone, kZero, kSign };

struct MmioInstruction {
  bool is_write = false;
  uint8_t width = 0;  // bytes accessed in memory: 1, 2, 4 or 8
  MmioOperand operand = MmioOperand::kRegister;
  uint8_t reg = 0;          // 0-15 in x86 encoding order (RAX, RCX, RDX, RBX, RSP, ... R15)
  bool high_byte = false;   // AH/CH/DH/BH: bits 15:8 of register reg (0-3)
  uint64_t immediate = 0;   // the value to write, already sign-extended to `width` bytes
  MmioExtension extension = MmioExtension::kNone;  // movzx / movsx
  uint8_t register_width = 0;  // bytes of the register operand (== width unless extended)
  uint8_t length = 0;          // whole instruction, prefixes included (advance RIP by this)

  bool operator==(const MmioInstruction&) const = default;
};

// Longest valid x86 instruction.
inline constexpr size_t kMaxX86InstructionLength = 15;

// Decodes the instruction at the start of `bytes` (more bytes may follow; they are ignored):
//   88/89 mov r/m, r    8A/8B mov r, r/m    C6/C7 /0 mov r/m, imm    0F B6/B7 movzx
//   0F BE/BF movsx      A0-A3 mov with a moffs address
// with 0x66 (operand size), 0x67 (address size), segment, LOCK/REP and (64-bit mode) REX
// prefixes. Register-only forms (ModRM mod == 3) and every other opcode fail with
// kInvalidArgument "unsupported instruction" and the bytes in the detail; input that ends inside
// the instruction fails with kInvalidArgument "truncated instruction". Never reads past
// bytes.size(). Pure function, thread-safe.
Result<MmioInstruction> DecodeMmioInstruction(std::span<const uint8_t> bytes, X86Mode mode);

// The value of the full 64-bit register after a read of `value` through `insn` into a register
// that held `old_value`: 8/16-bit destinations keep the other bits (AH..BH write bits 15:8),
// 32-bit destinations zero bits 63:32 (as x86-64 does), movzx/movsx extend first.
uint64_t ApplyMmioRead(const MmioInstruction& insn, uint64_t old_value, uint64_t value);

// The bytes a write stores: the immediate, or the `width` low bytes of the source register
// (bits 15:8 for AH..BH), given the register's full value.
uint64_t MmioWriteValue(const MmioInstruction& insn, uint64_t register_value);

// RAX after an IN of `data` (1, 2 or 4 bytes, little-endian) into a register that held
// `old_rax`: IN AL / AX keep the other bits, IN EAX zero-extends like any 32-bit write. For
// backends that complete port reads themselves (MSHV, WHP).
uint64_t ApplyIoIn(uint64_t old_rax, std::span<const uint8_t> data);

// Whether ApplyMmioRead needs the register's old value (8- and 16-bit destinations).
inline bool MmioReadNeedsOldValue(const MmioInstruction& insn) {
  return insn.register_width < 4;
}

}  // namespace virt
