// Portable x86-64 register sets exchanged with Vcpu in one batch each.
#pragma once

#include <array>
#include <cstdint>

namespace virt {

struct Registers {
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
  uint64_t r8 = 0, r9 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0, r14 = 0, r15 = 0;
  uint64_t rip = 0, rflags = 0x2;
  bool operator==(const Registers&) const = default;
};

struct SegmentRegister {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint16_t selector = 0;
  uint8_t type = 0;
  uint8_t present = 0, dpl = 0, db = 0, s = 0, l = 0, g = 0, avl = 0;
  bool unusable = false;
  bool operator==(const SegmentRegister&) const = default;
};

struct TableRegister {
  uint64_t base = 0;
  uint16_t limit = 0;
  bool operator==(const TableRegister&) const = default;
};

struct SpecialRegisters {
  SegmentRegister cs, ds, es, fs, gs, ss, tr, ldt;
  TableRegister gdt, idt;
  uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
  uint64_t efer = 0;
  uint64_t apic_base = 0;
  bool operator==(const SpecialRegisters&) const = default;
};

struct FpuState {
  uint16_t fcw = 0x37f, fsw = 0;
  uint8_t ftwx = 0;  // abridged tag word
  uint32_t mxcsr = 0x1f80;
  std::array<std::array<uint8_t, 16>, 8> fpr{};   // x87/MMX registers (80 bits used)
  std::array<std::array<uint8_t, 16>, 16> xmm{};
  bool operator==(const FpuState&) const = default;
};

struct MsrEntry {
  uint32_t index = 0;
  uint64_t value = 0;
  bool operator==(const MsrEntry&) const = default;
};

}  // namespace virt
