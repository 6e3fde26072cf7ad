// KvmVcpu register access: portable register sets <-> kvm_regs / kvm_sregs / kvm_fpu / kvm_msrs.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "kvm_vcpu.h"

namespace virt::kvm {
namespace {

// Registers, SegmentRegister, TableRegister and SpecialRegisters have the layouts of kvm_regs,
// kvm_segment, kvm_dtable and kvm_sregs (without its interrupt bitmap), so each conversion is
// one copy plus fix-ups: `unusable` is a bool here and a __u8 there, and KVM's padding fields
// are written as zeros.
#define VIRT_SAME_FIELD(ours, kvms, field) \
  static_assert(offsetof(ours, field) == offsetof(kvms, field) && \
                sizeof(ours::field) == sizeof(kvms::field))
static_assert(sizeof(Registers) == sizeof(kvm_regs) && std::is_trivially_copyable_v<Registers>);
VIRT_SAME_FIELD(Registers, kvm_regs, rax);
VIRT_SAME_FIELD(Registers, kvm_regs, rbp);
VIRT_SAME_FIELD(Registers, kvm_regs, r8);
VIRT_SAME_FIELD(Registers, kvm_regs, r15);
VIRT_SAME_FIELD(Registers, kvm_regs, rip);
VIRT_SAME_FIELD(Registers, kvm_regs, rflags);
static_assert(sizeof(SegmentRegister) == sizeof(kvm_segment));
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, base);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, limit);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, selector);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, type);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, present);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, dpl);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, db);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, s);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, l);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, g);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, avl);
VIRT_SAME_FIELD(SegmentRegister, kvm_segment, unusable);
static_assert(sizeof(TableRegister) == sizeof(kvm_dtable));
VIRT_SAME_FIELD(TableRegister, kvm_dtable, base);
VIRT_SAME_FIELD(TableRegister, kvm_dtable, limit);
static_assert(offsetof(kvm_sregs, interrupt_bitmap) == sizeof(SpecialRegisters) &&
              std::is_trivially_copyable_v<SpecialRegisters>);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, cs);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, ldt);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, gdt);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, idt);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, cr0);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, cr8);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, efer);
VIRT_SAME_FIELD(SpecialRegisters, kvm_sregs, apic_base);
#undef VIRT_SAME_FIELD

// The segments in both structs, for the per-segment fix-ups.
template <typename S, typename K>
void ForEachSegment(S& ours, K& kvm, auto f) {
  f(ours.cs, kvm.cs), f(ours.ds, kvm.ds), f(ours.es, kvm.es), f(ours.fs, kvm.fs);
  f(ours.gs, kvm.gs), f(ours.ss, kvm.ss), f(ours.tr, kvm.tr), f(ours.ldt, kvm.ldt);
}

void FromKvm(const kvm_sregs& k, SpecialRegisters& r) {
  std::memcpy(static_cast<void*>(&r), &k, sizeof r);
  // KVM's __u8 may hold any non-zero value; the bool gets exactly true or false.
  ForEachSegment(r, k, [](SegmentRegister& o, const kvm_segment& s) { o.unusable = s.unusable != 0; });
}

void ToKvm(const SpecialRegisters& r, kvm_sregs& k) {
  std::memcpy(static_cast<void*>(&k), &r, sizeof r);
  // interrupt_bitmap stays zero: with the in-kernel LAPIC KVM ignores it, and without one a
  // VMM injects through its own interrupt controller, not through this call.
  std::memset(k.interrupt_bitmap, 0, sizeof k.interrupt_bitmap);
  ForEachSegment(r, k, [](const SegmentRegister& o, kvm_segment& s) {
    s.unusable = o.unusable ? 1 : 0;
    s.padding = 0;
  });
  std::memset(k.gdt.padding, 0, sizeof k.gdt.padding);
  std::memset(k.idt.padding, 0, sizeof k.idt.padding);
}

Error RefusedMsr(const char* op, uint32_t index) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "MSR 0x%x refused", index);
  return Error::Make(ErrorCode::kInvalidArgument, op, buf);
}

}  // namespace

Status KvmVcpu::ReadRegisters(Registers& out) {
  kvm_regs k{};
  if (Status s = ioctl_->GetRegs(fd_.get(), &k); !s) return s;
  std::memcpy(static_cast<void*>(&out), &k, sizeof out);
  return Ok();
}

Status KvmVcpu::ReadSpecialRegisters(SpecialRegisters& out) {
  kvm_sregs k{};
  if (Status s = ioctl_->GetSregs(fd_.get(), &k); !s) return s;
  FromKvm(k, out);
  return Ok();
}

Result<Registers> KvmVcpu::GetRegisters() {
  Registers r;
  if (Status s = ReadRegisters(r); !s) return s.error();
  return r;
}

Status KvmVcpu::SetRegisters(const Registers& r) {
  kvm_regs k;
  std::memcpy(&k, &r, sizeof k);
  return ioctl_->SetRegs(fd_.get(), k);
}

Result<SpecialRegisters> KvmVcpu::GetSpecialRegisters() {
  SpecialRegisters r;
  if (Status s = ReadSpecialRegisters(r); !s) return s.error();
  return r;
}

Status KvmVcpu::SetSpecialRegisters(const SpecialRegisters& r) {
  kvm_sregs k;
  ToKvm(r, k);
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
