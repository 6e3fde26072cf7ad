// KvmVcpu register access: portable register sets <-> kvm_regs / kvm_sregs / kvm_fpu / kvm_msrs.
#include <cstring>
#include <string>
#include <vector>

#include "kvm_vcpu.h"

namespace virt::kvm {
namespace {

SegmentRegister FromKvm(const kvm_segment& s) {
  return SegmentRegister{s.base, s.limit, s.selector, s.type, s.present, s.dpl,
                         s.db,   s.s,     s.l,        s.g,    s.avl,     s.unusable != 0};
}

kvm_segment ToKvm(const SegmentRegister& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable ? 1 : 0;
  return k;
}

Error RefusedMsr(const char* op, uint32_t index) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "MSR 0x%x refused", index);
  return Error::Make(ErrorCode::kInvalidArgument, op, buf);
}

}  // namespace

Result<Registers> KvmVcpu::GetRegisters() {
  kvm_regs k{};
  if (Status s = ioctl_->GetRegs(fd_.get(), &k); !s) return s.error();
  return Registers{k.rax, k.rbx, k.rcx, k.rdx, k.rsi, k.rdi, k.rsp, k.rbp, k.r8,
                   k.r9,  k.r10, k.r11, k.r12, k.r13, k.r14, k.r15, k.rip, k.rflags};
}

Status KvmVcpu::SetRegisters(const Registers& r) {
  kvm_regs k{};
  k.rax = r.rax, k.rbx = r.rbx, k.rcx = r.rcx, k.rdx = r.rdx;
  k.rsi = r.rsi, k.rdi = r.rdi, k.rsp = r.rsp, k.rbp = r.rbp;
  k.r8 = r.r8, k.r9 = r.r9, k.r10 = r.r10, k.r11 = r.r11;
  k.r12 = r.r12, k.r13 = r.r13, k.r14 = r.r14, k.r15 = r.r15;
  k.rip = r.rip, k.rflags = r.rflags;
  return ioctl_->SetRegs(fd_.get(), k);
}

Result<SpecialRegisters> KvmVcpu::GetSpecialRegisters() {
  kvm_sregs k{};
  if (Status s = ioctl_->GetSregs(fd_.get(), &k); !s) return s.error();
  SpecialRegisters r;
  r.cs = FromKvm(k.cs), r.ds = FromKvm(k.ds), r.es = FromKvm(k.es), r.fs = FromKvm(k.fs);
  r.gs = FromKvm(k.gs), r.ss = FromKvm(k.ss), r.tr = FromKvm(k.tr), r.ldt = FromKvm(k.ldt);
  r.gdt = {k.gdt.base, k.gdt.limit};
  r.idt = {k.idt.base, k.idt.limit};
  r.cr0 = k.cr0, r.cr2 = k.cr2, r.cr3 = k.cr3, r.cr4 = k.cr4, r.cr8 = k.cr8;
  r.efer = k.efer;
  r.apic_base = k.apic_base;
  return r;
}

Status KvmVcpu::SetSpecialRegisters(const SpecialRegisters& r) {
  // interrupt_bitmap stays zero: with the in-kernel LAPIC KVM ignores it, and without one a
  // VMM injects through its own interrupt controller, not through this call.
  kvm_sregs k{};
  k.cs = ToKvm(r.cs), k.ds = ToKvm(r.ds), k.es = ToKvm(r.es), k.fs = ToKvm(r.fs);
  k.gs = ToKvm(r.gs), k.ss = ToKvm(r.ss), k.tr = ToKvm(r.tr), k.ldt = ToKvm(r.ldt);
  k.gdt.base = r.gdt.base, k.gdt.limit = r.gdt.limit;
  k.idt.base = r.idt.base, k.idt.limit = r.idt.limit;
  k.cr0 = r.cr0, k.cr2 = r.cr2, k.cr3 = r.cr3, k.cr4 = r.cr4, k.cr8 = r.cr8;
  k.efer = r.efer;
  k.apic_base = r.apic_base;
  return ioctl_->SetSregs(fd_.get(), k);
}

Result<FpuState> KvmVcpu::GetFpu() {
  kvm_fpu k{};
  if (Status s = ioctl_->GetFpu(fd_.get(), &k); !s) return s.error();
  FpuState f;
  f.fcw = k.fcw, f.fsw = k.fsw, f.ftwx = k.ftwx, f.mxcsr = k.mxcsr;
  std::memcpy(f.fpr.data(), k.fpr, sizeof k.fpr);
  std::memcpy(f.xmm.data(), k.xmm, sizeof k.xmm);
  return f;
}

Status KvmVcpu::SetFpu(const FpuState& f) {
  kvm_fpu k{};
  k.fcw = f.fcw, k.fsw = f.fsw, k.ftwx = f.ftwx, k.mxcsr = f.mxcsr;
  std::memcpy(k.fpr, f.fpr.data(), sizeof k.fpr);
  std::memcpy(k.xmm, f.xmm.data(), sizeof k.xmm);
  return ioctl_->SetFpu(fd_.get(), k);
}

Status KvmVcpu::GetMsrs(std::span<MsrEntry> msrs) {
  if (msrs.empty()) return Ok();
  kvm_msrs* k = msr_scratch_.Get(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) k->entries[i] = {msrs[i].index, 0, 0};
  auto done = ioctl_->GetMsrs(fd_.get(), k);
  if (!done) return done.error();
  if (static_cast<size_t>(*done) < msrs.size()) {
    return RefusedMsr("KVM_GET_MSRS", msrs[static_cast<size_t>(*done)].index);
  }
  for (size_t i = 0; i < msrs.size(); ++i) msrs[i].value = k->entries[i].data;
  return Ok();
}

Status KvmVcpu::SetMsrs(std::span<const MsrEntry> msrs) {
  if (msrs.empty()) return Ok();
  kvm_msrs* k = msr_scratch_.Get(msrs.size());
  CopyMsrsToKvm(msrs, k);
  auto done = ioctl_->SetMsrs(fd_.get(), *k);
  if (!done) return done.error();
  if (static_cast<size_t>(*done) < msrs.size()) {
    return RefusedMsr("KVM_SET_MSRS", msrs[static_cast<size_t>(*done)].index);
  }
  return Ok();
}

}  // namespace virt::kvm
