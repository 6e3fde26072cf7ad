// MshvVcpu register access: portable register sets <-> Hyper-V register names, XSAVE, MSRs.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mshv_hvcall.h"
#include "mshv_msr_names.h"
#include "mshv_vcpu.h"

namespace virt::mshv {
namespace {

// RAX..R15 are 0x00020000 + the x86 register number; Registers lists them as rax, rbx, rcx ...
constexpr uint32_t kGprNames[] = {
    HV_X64_REGISTER_RAX, HV_X64_REGISTER_RBX, HV_X64_REGISTER_RCX, HV_X64_REGISTER_RDX,
    HV_X64_REGISTER_RSI, HV_X64_REGISTER_RDI, HV_X64_REGISTER_RSP, HV_X64_REGISTER_RBP,
    HV_X64_REGISTER_R8,  HV_X64_REGISTER_R9,  HV_X64_REGISTER_R10, HV_X64_REGISTER_R11,
    HV_X64_REGISTER_R12, HV_X64_REGISTER_R13, HV_X64_REGISTER_R14, HV_X64_REGISTER_R15,
    HV_X64_REGISTER_RIP, HV_X64_REGISTER_RFLAGS,
};
constexpr size_t kGprCount = std::size(kGprNames);

uint64_t* GprField(Registers& r, size_t i) {
  uint64_t* fields[] = {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp, &r.r8,
                        &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15, &r.rip, &r.rflags};
  return fields[i];
}

// Segments first (in SpecialRegisters order), then tables, control registers, EFER, APIC base.
constexpr uint32_t kSregNames[] = {
    HV_X64_REGISTER_CS,   HV_X64_REGISTER_DS,   HV_X64_REGISTER_ES,  HV_X64_REGISTER_FS,
    HV_X64_REGISTER_GS,   HV_X64_REGISTER_SS,   HV_X64_REGISTER_TR,  HV_X64_REGISTER_LDTR,
    HV_X64_REGISTER_GDTR, HV_X64_REGISTER_IDTR, HV_X64_REGISTER_CR0, HV_X64_REGISTER_CR2,
    HV_X64_REGISTER_CR3,  HV_X64_REGISTER_CR4,  HV_X64_REGISTER_CR8, HV_X64_REGISTER_EFER,
    HV_X64_REGISTER_APIC_BASE,
};
constexpr size_t kSregCount = std::size(kSregNames);

SegmentRegister* SegField(SpecialRegisters& s, size_t i) {
  SegmentRegister* fields[] = {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt};
  return fields[i];
}
uint64_t* ScalarField(SpecialRegisters& s, size_t i) {  // i counts from CR0
  uint64_t* fields[] = {&s.cr0, &s.cr2, &s.cr3, &s.cr4, &s.cr8, &s.efer, &s.apic_base};
  return fields[i];
}

template <typename T>
T As(const hv_register_value& v) {
  static_assert(sizeof(T) == sizeof v);
  T out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}
template <typename T>
hv_register_value From(const T& t) {
  hv_register_value v;
  std::memcpy(&v, &t, sizeof v);
  return v;
}

SegmentRegister FromHv(const hv_x64_segment_register& h) {
  SegmentRegister s;
  s.base = h.base;
  s.limit = h.limit;
  s.selector = h.selector;
  const uint16_t a = h.attributes;
  s.type = a & 0xF;
  s.s = (a >> 4) & 1;
  s.dpl = (a >> 5) & 3;
  s.present = (a >> 7) & 1;
  s.avl = (a >> 12) & 1;
  s.l = (a >> 13) & 1;
  s.db = (a >> 14) & 1;
  s.g = (a >> 15) & 1;
  s.unusable = s.present == 0;  // Hyper-V has no separate "unusable" bit
  return s;
}

hv_x64_segment_register ToHv(const SegmentRegister& s) {
  hv_x64_segment_register h{};
  h.base = s.base;
  h.limit = s.limit;
  h.selector = s.selector;
  const bool present = s.present != 0 && !s.unusable;
  h.attributes = static_cast<uint16_t>((s.type & 0xF) | (s.s & 1) << 4 | (s.dpl & 3) << 5 |
                                       (present ? 1 : 0) << 7 | (s.avl & 1) << 12 |
                                       (s.l & 1) << 13 | (s.db & 1) << 14 | (s.g & 1) << 15);
  return h;
}

// Hyper-V names for the MSRs that have one (mshv_msr_names.h).
bool MsrName(uint32_t msr, uint32_t* name) {
  const std::optional<uint32_t> found = MsrRegister(msr);
  if (found) *name = *found;
  return found.has_value();
}

Error NoMsrName(const char* op, uint32_t msr) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "MSR 0x%x refused (no Hyper-V register name)", msr);
  return Error::Make(ErrorCode::kInvalidArgument, op, buf);
}

// A page-aligned XSAVE buffer, as MSHV_GET/SET_VP_STATE require.
struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using XsaveBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

// Offsets in the legacy (FXSAVE) region at the start of every XSAVE area.
constexpr size_t kFcw = 0, kFsw = 2, kFtw = 4, kMxcsr = 24, kSt = 32, kXmm = 160;

}  // namespace

Result<Registers> MshvVcpu::GetRegisters() {
  hv_register_value values[kGprCount];
  if (Status s = GetVpRegisters(*ioctl_, fd_.get(), index_, kGprNames, values); !s) {
    return s.error();
  }
  Registers r;
  for (size_t i = 0; i < kGprCount; ++i) *GprField(r, i) = values[i].low;
  return r;
}

Status MshvVcpu::SetRegisters(const Registers& regs) {
  Registers r = regs;
  hv_register_assoc assocs[kGprCount];
  for (size_t i = 0; i < kGprCount; ++i) assocs[i] = Assoc(kGprNames[i], *GprField(r, i));
  return SetVpRegisters(*ioctl_, fd_.get(), index_, assocs);
}

Result<SpecialRegisters> MshvVcpu::GetSpecialRegisters() {
  hv_register_value values[kSregCount];
  if (Status s = GetVpRegisters(*ioctl_, fd_.get(), index_, kSregNames, values); !s) {
    return s.error();
  }
  SpecialRegisters sr;
  for (size_t i = 0; i < 8; ++i) *SegField(sr, i) = FromHv(As<hv_x64_segment_register>(values[i]));
  const auto gdt = As<hv_x64_table_register>(values[8]);
  const auto idt = As<hv_x64_table_register>(values[9]);
  sr.gdt = {gdt.base, gdt.limit};
  sr.idt = {idt.base, idt.limit};
  for (size_t i = 10; i < kSregCount; ++i) *ScalarField(sr, i - 10) = values[i].low;
  return sr;
}

Status MshvVcpu::SetSpecialRegisters(const SpecialRegisters& sregs) {
  SpecialRegisters sr = sregs;
  hv_register_assoc assocs[kSregCount];
  for (size_t i = 0; i < 8; ++i) {
    assocs[i] = Assoc(kSregNames[i], 0);
    assocs[i].value = From(ToHv(*SegField(sr, i)));
  }
  const TableRegister* tables[] = {&sr.gdt, &sr.idt};
  for (size_t i = 0; i < 2; ++i) {
    hv_x64_table_register t{};
    t.base = tables[i]->base;
    t.limit = tables[i]->limit;
    assocs[8 + i] = Assoc(kSregNames[8 + i], 0);
    assocs[8 + i].value = From(t);
  }
  for (size_t i = 10; i < kSregCount; ++i) {
    assocs[i] = Assoc(kSregNames[i], *ScalarField(sr, i - 10));
  }
  return SetVpRegisters(*ioctl_, fd_.get(), index_, assocs);
}

Result<FpuState> MshvVcpu::GetFpu() {
  XsaveBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(4096, kXsaveBufferSize)));
  if (!buf) return Error::Errno("aligned_alloc", ENOMEM);
  std::memset(buf.get(), 0, kXsaveBufferSize);
  mshv_get_set_vp_state state{};
  state.type = MSHV_VP_STATE_XSAVE;
  state.buf_sz = kXsaveBufferSize;
  state.buf_ptr = reinterpret_cast<uintptr_t>(buf.get());
  if (Status s = ioctl_->GetVpState(fd_.get(), &state); !s) return s.error();
  const uint8_t* x = buf.get();
  FpuState f;
  std::memcpy(&f.fcw, x + kFcw, 2);
  std::memcpy(&f.fsw, x + kFsw, 2);
  f.ftwx = x[kFtw];
  std::memcpy(&f.mxcsr, x + kMxcsr, 4);
  std::memcpy(f.fpr.data(), x + kSt, sizeof f.fpr);
  std::memcpy(f.xmm.data(), x + kXmm, sizeof f.xmm);
  return f;
}

Status MshvVcpu::SetFpu(const FpuState& fpu) {
  XsaveBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(4096, kXsaveBufferSize)));
  if (!buf) return Error::Errno("aligned_alloc", ENOMEM);
  std::memset(buf.get(), 0, kXsaveBufferSize);
  mshv_get_set_vp_state state{};
  state.type = MSHV_VP_STATE_XSAVE;
  state.buf_sz = kXsaveBufferSize;
  state.buf_ptr = reinterpret_cast<uintptr_t>(buf.get());
  if (Status s = ioctl_->GetVpState(fd_.get(), &state); !s) return s;
  uint8_t* x = buf.get();
  std::memcpy(x + kFcw, &fpu.fcw, 2);
  std::memcpy(x + kFsw, &fpu.fsw, 2);
  x[kFtw] = fpu.ftwx;
  std::memcpy(x + kMxcsr, &fpu.mxcsr, 4);
  std::memcpy(x + kSt, fpu.fpr.data(), sizeof fpu.fpr);
  std::memcpy(x + kXmm, fpu.xmm.data(), sizeof fpu.xmm);
  state.buf_sz = kXsaveBufferSize;  // GET wrote the state's size here, which need not be paged
  return ioctl_->SetVpState(fd_.get(), state);
}

Status MshvVcpu::GetMsrs(std::span<MsrEntry> msrs) {
  if (msrs.empty()) return Ok();
  if (msrs.size() > kMaxRegistersPerCall) {
    return Error::Make(ErrorCode::kInvalidArgument, "HVCALL_GET_VP_REGISTERS", "too many MSRs");
  }
  std::vector<uint32_t> names(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    if (!MsrName(msrs[i].index, &names[i])) return NoMsrName("HVCALL_GET_VP_REGISTERS", msrs[i].index);
  }
  std::vector<hv_register_value> values(msrs.size());
  if (Status s = GetVpRegisters(*ioctl_, fd_.get(), index_, names, values); !s) return s;
  for (size_t i = 0; i < msrs.size(); ++i) msrs[i].value = values[i].low;
  return Ok();
}

Status MshvVcpu::SetMsrs(std::span<const MsrEntry> msrs) {
  if (msrs.empty()) return Ok();
  if (msrs.size() > kMaxRegistersPerCall) {
    return Error::Make(ErrorCode::kInvalidArgument, "HVCALL_SET_VP_REGISTERS", "too many MSRs");
  }
  std::vector<hv_register_assoc> assocs(msrs.size());
  for (size_t i = 0; i < msrs.size(); ++i) {
    uint32_t name = 0;
    if (!MsrName(msrs[i].index, &name)) return NoMsrName("HVCALL_SET_VP_REGISTERS", msrs[i].index);
    assocs[i] = Assoc(name, msrs[i].value);
  }
  return SetVpRegisters(*ioctl_, fd_.get(), index_, assocs);
}

}  // namespace virt::mshv
