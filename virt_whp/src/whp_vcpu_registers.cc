// WhpVcpu register batches: GPRs, segments/control registers, x87/SSE state and MSRs, each in
// one WHvGet/SetVirtualProcessorRegisters call.
#include <cstring>
#include <string>

#include "whp_msr_names.h"
#include "whp_vcpu.h"

namespace virt::whp {
namespace {

constexpr WHV_REGISTER_NAME kGprNames[] = {
    WHvX64RegisterRax, WHvX64RegisterRbx, WHvX64RegisterRcx, WHvX64RegisterRdx,
    WHvX64RegisterRsi, WHvX64RegisterRdi, WHvX64RegisterRsp, WHvX64RegisterRbp,
    WHvX64RegisterR8,  WHvX64RegisterR9,  WHvX64RegisterR10, WHvX64RegisterR11,
    WHvX64RegisterR12, WHvX64RegisterR13, WHvX64RegisterR14, WHvX64RegisterR15,
    WHvX64RegisterRip, WHvX64RegisterRflags};
constexpr size_t kGprCount = std::size(kGprNames);

// Registers fields in kGprNames order.
uint64_t* GprFields(Registers& r, size_t i) {
  uint64_t* fields[] = {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp, &r.r8,
                        &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15, &r.rip, &r.rflags};
  return fields[i];
}

constexpr WHV_REGISTER_NAME kSregNames[] = {
    WHvX64RegisterEs,   WHvX64RegisterCs,   WHvX64RegisterSs,   WHvX64RegisterDs,
    WHvX64RegisterFs,   WHvX64RegisterGs,   WHvX64RegisterLdtr, WHvX64RegisterTr,
    WHvX64RegisterIdtr, WHvX64RegisterGdtr, WHvX64RegisterCr0,  WHvX64RegisterCr2,
    WHvX64RegisterCr3,  WHvX64RegisterCr4,  WHvX64RegisterCr8,  WHvX64RegisterEfer,
    WHvX64RegisterApicBase};
constexpr size_t kSregCount = std::size(kSregNames);

SegmentRegister* SegmentFields(SpecialRegisters& s, size_t i) {
  SegmentRegister* fields[] = {&s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs, &s.ldt, &s.tr};
  return fields[i];
}
uint64_t* ControlFields(SpecialRegisters& s, size_t i) {
  uint64_t* fields[] = {&s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.efer, &s.apic_base};
  return fields[i];
}

SegmentRegister FromWhp(const WHV_X64_SEGMENT_REGISTER& w) {
  SegmentRegister s;
  s.base = w.Base;
  s.limit = w.Limit;
  s.selector = w.Selector;
  s.type = static_cast<uint8_t>(w.SegmentType);
  s.s = static_cast<uint8_t>(w.NonSystemSegment);
  s.dpl = static_cast<uint8_t>(w.DescriptorPrivilegeLevel);
  s.present = static_cast<uint8_t>(w.Present);
  s.avl = static_cast<uint8_t>(w.Available);
  s.l = static_cast<uint8_t>(w.Long);
  s.db = static_cast<uint8_t>(w.Default);
  s.g = static_cast<uint8_t>(w.Granularity);
  s.unusable = w.Present == 0;
  return s;
}

WHV_X64_SEGMENT_REGISTER ToWhp(const SegmentRegister& s) {
  WHV_X64_SEGMENT_REGISTER w{};
  w.Base = s.base;
  w.Limit = s.limit;
  w.Selector = s.selector;
  w.SegmentType = s.type & 0xF;
  w.NonSystemSegment = s.s & 1;
  w.DescriptorPrivilegeLevel = s.dpl & 3;
  w.Present = s.unusable ? 0 : (s.present & 1);
  w.Available = s.avl & 1;
  w.Long = s.l & 1;
  w.Default = s.db & 1;
  w.Granularity = s.g & 1;
  return w;
}

Result<std::vector<WHV_REGISTER_NAME>> MsrNames(std::span<const uint32_t> indices,
                                                const char* op) {
  std::vector<WHV_REGISTER_NAME> names;
  names.reserve(indices.size());
  for (uint32_t index : indices) {
    auto name = WhpMsrRegister(index);
    if (!name) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%x", index);
      return Error::Make(ErrorCode::kInvalidArgument, op,
                         std::string("MSR ") + hex + " has no WHP register name");
    }
    names.push_back(*name);
  }
  return names;
}

// FpuState field order: FpMmx0-7, FpControlStatus, XmmControlStatus, Xmm0-15.
constexpr size_t kFpuCount = 8 + 2 + 16;
std::array<WHV_REGISTER_NAME, kFpuCount> FpuNames() {
  std::array<WHV_REGISTER_NAME, kFpuCount> names{};
  for (size_t i = 0; i < 8; ++i) {
    names[i] = static_cast<WHV_REGISTER_NAME>(WHvX64RegisterFpMmx0 + i);
  }
  names[8] = WHvX64RegisterFpControlStatus;
  names[9] = WHvX64RegisterXmmControlStatus;
  for (size_t i = 0; i < 16; ++i) {
    names[10 + i] = static_cast<WHV_REGISTER_NAME>(WHvX64RegisterXmm0 + i);
  }
  return names;
}

}  // namespace

Result<Registers> WhpVcpu::GetRegisters() {
  WHV_REGISTER_VALUE values[kGprCount];
  if (Status s = GetRegs(kGprNames, values); !s) return s.error();
  Registers regs;
  for (size_t i = 0; i < kGprCount; ++i) *GprFields(regs, i) = values[i].Reg64;
  return regs;
}

Status WhpVcpu::SetRegisters(const Registers& regs) {
  Registers copy = regs;
  WHV_REGISTER_VALUE values[kGprCount];
  for (size_t i = 0; i < kGprCount; ++i) {
    values[i] = WHV_REGISTER_VALUE{};
    values[i].Reg64 = *GprFields(copy, i);
  }
  return SetRegs(kGprNames, values);
}

Result<SpecialRegisters> WhpVcpu::GetSpecialRegisters() {
  WHV_REGISTER_VALUE values[kSregCount];
  if (Status s = GetRegs(kSregNames, values); !s) return s.error();
  SpecialRegisters sregs;
  for (size_t i = 0; i < 8; ++i) *SegmentFields(sregs, i) = FromWhp(values[i].Segment);
  sregs.idt = TableRegister{values[8].Table.Base, values[8].Table.Limit};
  sregs.gdt = TableRegister{values[9].Table.Base, values[9].Table.Limit};
  for (size_t i = 0; i < 7; ++i) *ControlFields(sregs, i) = values[10 + i].Reg64;
  return sregs;
}

Status WhpVcpu::SetSpecialRegisters(const SpecialRegisters& sregs) {
  SpecialRegisters copy = sregs;
  WHV_REGISTER_VALUE values[kSregCount];
  for (auto& v : values) v = WHV_REGISTER_VALUE{};
  for (size_t i = 0; i < 8; ++i) values[i].Segment = ToWhp(*SegmentFields(copy, i));
  values[8].Table.Base = sregs.idt.base;
  values[8].Table.Limit = sregs.idt.limit;
  values[9].Table.Base = sregs.gdt.base;
  values[9].Table.Limit = sregs.gdt.limit;
  for (size_t i = 0; i < 7; ++i) values[10 + i].Reg64 = *ControlFields(copy, i);
  return SetRegs(kSregNames, values);
}

Result<FpuState> WhpVcpu::GetFpu() {
  const auto names = FpuNames();
  WHV_REGISTER_VALUE values[kFpuCount];
  if (Status s = GetRegs(names, values); !s) return s.error();
  FpuState fpu;
  for (size_t i = 0; i < 8; ++i) std::memcpy(fpu.fpr[i].data(), &values[i].Reg128, 16);
  fpu.fcw = values[8].FpControlStatus.FpControl;
  fpu.fsw = values[8].FpControlStatus.FpStatus;
  fpu.ftwx = values[8].FpControlStatus.FpTag;
  fpu.mxcsr = values[9].XmmControlStatus.XmmStatusControl;
  for (size_t i = 0; i < 16; ++i) std::memcpy(fpu.xmm[i].data(), &values[10 + i].Reg128, 16);
  return fpu;
}

Status WhpVcpu::SetFpu(const FpuState& fpu) {
  const auto names = FpuNames();
  WHV_REGISTER_VALUE values[kFpuCount];
  for (auto& v : values) v = WHV_REGISTER_VALUE{};
  for (size_t i = 0; i < 8; ++i) std::memcpy(&values[i].Reg128, fpu.fpr[i].data(), 16);
  values[8].FpControlStatus.FpControl = fpu.fcw;
  values[8].FpControlStatus.FpStatus = fpu.fsw;
  values[8].FpControlStatus.FpTag = fpu.ftwx;
  values[9].XmmControlStatus.XmmStatusControl = fpu.mxcsr;
  values[9].XmmControlStatus.XmmStatusControlMask = 0xFFFF;  // every MXCSR bit is writable
  for (size_t i = 0; i < 16; ++i) std::memcpy(&values[10 + i].Reg128, fpu.xmm[i].data(), 16);
  return SetRegs(names, values);
}

Status WhpVcpu::GetMsrs(std::span<MsrEntry> msrs) {
  std::vector<uint32_t> indices;
  for (const auto& m : msrs) indices.push_back(m.index);
  auto names = MsrNames(indices, "WhpVcpu::GetMsrs");
  if (!names) return names.error();
  std::vector<WHV_REGISTER_VALUE> values(msrs.size());
  if (Status s = GetRegs(*names, values); !s) return s;
  for (size_t i = 0; i < msrs.size(); ++i) msrs[i].value = values[i].Reg64;
  return Ok();
}

Status WhpVcpu::SetMsrs(std::span<const MsrEntry> msrs) {
  std::vector<uint32_t> indices;
  for (const auto& m : msrs) indices.push_back(m.index);
  auto names = MsrNames(indices, "WhpVcpu::SetMsrs");
  if (!names) return names.error();
  std::vector<WHV_REGISTER_VALUE> values(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) values[i].Reg64 = msrs[i].value;
  return SetRegs(*names, values);
}

}  // namespace virt::whp
