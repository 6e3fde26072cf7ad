// The multiboot entry state of the boot vCPU: flat 32-bit protected mode, paging off.
#pragma once

#include <cstdint>

#include "virt/registers.h"
#include "virt/result.h"
#include "virt/vcpu.h"

namespace virt::run {

struct BootCpuState {
  uint32_t entry = 0;         // EIP
  uint32_t info_address = 0;  // EBX
  uint32_t gdt_address = 0;
  uint16_t gdt_limit = 0;
  uint32_t tss_address = 0;
  uint16_t tss_limit = 0;
};

// `sregs` (as read from the vCPU, so apic_base and the rest stay) turned into the multiboot
// entry state: CR0 = PE | ET, CR3 = CR4 = EFER = 0; CS = 0x08 flat 4 GiB execute/read (D/B,
// G); DS/ES/FS/GS/SS = 0x10 flat read/write; TR = 0x18 a busy 32-bit TSS; LDTR unusable;
// GDTR the info area's GDT; IDTR empty (a fault before the kernel loads its own IDT is a
// triple fault, reported as a shutdown).
SpecialRegisters BootSpecialRegisters(SpecialRegisters sregs, const BootCpuState& state);

// EAX = 0x2BADB002, EBX = info, EIP = entry, EFLAGS = 0x2 (IF clear), everything else 0.
Registers BootRegisters(const BootCpuState& state);

// Reads the special registers, then sets both sets (KVM_GET_SREGS, KVM_SET_SREGS,
// KVM_SET_REGS ...). From the vCPU's own thread, before its first Run.
Status EnterMultiboot(Vcpu& vcpu, const BootCpuState& state);

}  // namespace virt::run
