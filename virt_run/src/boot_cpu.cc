// The multiboot entry state: segment hidden state, control registers and the boot registers.
#include "virt_run/boot_cpu.h"

#include "virt_run/multiboot_header.h"

namespace virt::run {
namespace {

SegmentRegister Flat(uint16_t selector, uint8_t type) {
  SegmentRegister s;
  s.base = 0;
  s.limit = 0xFFFFFFFF;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = 1;
  s.s = 1;
  s.l = 0;
  s.g = 1;
  return s;
}

}  // namespace

SpecialRegisters BootSpecialRegisters(SpecialRegisters sregs, const BootCpuState& state) {
  sregs.cs = Flat(0x08, 0xB);  // execute/read, accessed
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = Flat(0x10, 0x3);  // read/write, accessed
  SegmentRegister tr;
  tr.base = state.tss_address;
  tr.limit = state.tss_limit;
  tr.selector = 0x18;
  tr.type = 0xB;  // busy 32-bit TSS
  tr.present = 1;
  sregs.tr = tr;
  SegmentRegister ldt;
  ldt.type = 0x2;
  ldt.unusable = true;
  sregs.ldt = ldt;
  sregs.gdt = {state.gdt_address, state.gdt_limit};
  sregs.idt = {0, 0};
  sregs.cr0 = 0x11;  // PE | ET
  sregs.cr2 = 0;
  sregs.cr3 = 0;
  sregs.cr4 = 0;
  sregs.efer = 0;
  return sregs;
}

Registers BootRegisters(const BootCpuState& state) {
  Registers regs;
  regs.rax = multiboot::kBootMagic;
  regs.rbx = state.info_address;
  regs.rip = state.entry;
  regs.rflags = 0x2;
  return regs;
}

Status EnterMultiboot(Vcpu& vcpu, const BootCpuState& state) {
  auto sregs = vcpu.GetSpecialRegisters();
  if (!sregs) return sregs.error();
  if (Status s = vcpu.SetSpecialRegisters(BootSpecialRegisters(*sregs, state)); !s) return s;
  return vcpu.SetRegisters(BootRegisters(state));
}

}  // namespace virt::run
