// VcpuState: the parts present, their names, and the versioned byte form.
#include "virt/vcpu_state.h"

#include <string>

#include "state_codec.h"

namespace virt {
namespace {

constexpr std::string_view kMagic = "VIRTVCPU";
constexpr uint32_t kMaxEntries = 4096;          // CPUID leaves, MSRs, XCRs
constexpr size_t kMaxBlob = size_t{1} << 20;    // an XSAVE area or LAPIC page

void PutSegment(StateWriter& w, const SegmentRegister& s) {
  w.U64(s.base), w.U32(s.limit), w.U16(s.selector), w.U8(s.type), w.U8(s.present);
  w.U8(s.dpl), w.U8(s.db), w.U8(s.s), w.U8(s.l), w.U8(s.g), w.U8(s.avl), w.Bool(s.unusable);
  w.Zeros(1);
}

SegmentRegister GetSegment(StateReader& r) {
  SegmentRegister s;
  s.base = r.U64(), s.limit = r.U32(), s.selector = r.U16(), s.type = r.U8(), s.present = r.U8();
  s.dpl = r.U8(), s.db = r.U8(), s.s = r.U8(), s.l = r.U8(), s.g = r.U8(), s.avl = r.U8();
  s.unusable = r.Bool();
  r.Skip(1);
  return s;
}

void PutPart(StateWriter& w, VcpuStatePart part, const VcpuState& s) {
  w.BeginRecord(static_cast<uint16_t>(part));
  switch (part) {
    case VcpuStatePart::kCpuid:
      w.U32(static_cast<uint32_t>(s.cpuid->size()));
      for (const CpuidEntry& e : s.cpuid->entries()) {
        w.U32(e.function), w.U32(e.index), w.U32(e.flags);
        w.U32(e.eax), w.U32(e.ebx), w.U32(e.ecx), w.U32(e.edx);
      }
      break;
    case VcpuStatePart::kMsrs:
      w.U32(static_cast<uint32_t>(s.msrs->size()));
      for (const MsrEntry& m : *s.msrs) w.U32(m.index), w.U32(0), w.U64(m.value);
      break;
    case VcpuStatePart::kSpecialRegisters: {
      const SpecialRegisters& r = *s.special_registers;
      for (const SegmentRegister* seg : {&r.cs, &r.ds, &r.es, &r.fs, &r.gs, &r.ss, &r.tr, &r.ldt}) {
        PutSegment(w, *seg);
      }
      for (const TableRegister* t : {&r.gdt, &r.idt}) w.U64(t->base), w.U16(t->limit), w.Zeros(6);
      for (uint64_t v : {r.cr0, r.cr2, r.cr3, r.cr4, r.cr8, r.efer, r.apic_base}) w.U64(v);
      break;
    }
    case VcpuStatePart::kRegisters: {
      const Registers& r = *s.registers;
      for (uint64_t v : {r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9,
                         r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags}) {
        w.U64(v);
      }
      break;
    }
    case VcpuStatePart::kXcrs:
      w.U32(static_cast<uint32_t>(s.xcrs->size()));
      for (const XcrEntry& x : *s.xcrs) w.U32(x.index), w.U32(0), w.U64(x.value);
      break;
    case VcpuStatePart::kXsave:
      w.Bytes(*s.xsave);
      break;
    case VcpuStatePart::kDebugRegisters:
      for (uint64_t v : s.debug_registers->db) w.U64(v);
      w.U64(s.debug_registers->dr6), w.U64(s.debug_registers->dr7);
      break;
    case VcpuStatePart::kMpState:
      w.U8(static_cast<uint8_t>(*s.mp_state)), w.Zeros(3);
      break;
    case VcpuStatePart::kLapic:
      w.Bytes(*s.lapic);
      break;
    case VcpuStatePart::kEvents: {
      const VcpuEvents& e = *s.events;
      w.Bool(e.exception.injected), w.Bool(e.exception.pending), w.U8(e.exception.vector);
      w.Bool(e.exception.has_error_code), w.U32(e.exception.error_code);
      w.Bool(e.exception.payload.has_value()), w.Zeros(7), w.U64(e.exception.payload.value_or(0));
      w.Bool(e.interrupt.injected), w.U8(e.interrupt.vector), w.Bool(e.interrupt.soft);
      w.U8(e.interrupt.shadow);
      w.Bool(e.nmi.injected), w.Bool(e.nmi.pending), w.Bool(e.nmi.masked), w.Zeros(1);
      w.Bool(e.smi.smm), w.Bool(e.smi.pending), w.Bool(e.smi.inside_nmi);
      w.Bool(e.smi.latched_init);
      w.U32(e.sipi_vector), w.Bool(e.triple_fault_pending), w.Zeros(3);
      break;
    }
    case VcpuStatePart::kTsc:
      w.U64(*s.tsc);
      break;
  }
  w.EndRecord();
}

void GetPart(StateReader& r, VcpuStatePart part, VcpuState& s) {
  switch (part) {
    case VcpuStatePart::kCpuid: {
      const uint32_t n = r.Count(28, kMaxEntries);
      std::vector<CpuidEntry> entries(n);
      for (CpuidEntry& e : entries) {
        e.function = r.U32(), e.index = r.U32(), e.flags = r.U32();
        e.eax = r.U32(), e.ebx = r.U32(), e.ecx = r.U32(), e.edx = r.U32();
        if (e.flags & ~kCpuidIndexSignificant) r.Fail("CPUID entry with unknown flags");
      }
      s.cpuid = Cpuid(entries);
      if (r.ok() && s.cpuid->size() != n) r.Fail("repeated CPUID leaf");
      break;
    }
    case VcpuStatePart::kMsrs: {
      const uint32_t n = r.Count(16, kMaxEntries);
      s.msrs.emplace(n);
      for (MsrEntry& m : *s.msrs) {
        m.index = r.U32();
        if (r.U32() != 0) r.Fail("non-zero MSR padding");
        m.value = r.U64();
      }
      break;
    }
    case VcpuStatePart::kSpecialRegisters: {
      SpecialRegisters& sr = s.special_registers.emplace();
      for (SegmentRegister* seg : {&sr.cs, &sr.ds, &sr.es, &sr.fs, &sr.gs, &sr.ss, &sr.tr, &sr.ldt}) {
        *seg = GetSegment(r);
      }
      for (TableRegister* t : {&sr.gdt, &sr.idt}) t->base = r.U64(), t->limit = r.U16(), r.Skip(6);
      for (uint64_t* v : {&sr.cr0, &sr.cr2, &sr.cr3, &sr.cr4, &sr.cr8, &sr.efer, &sr.apic_base}) {
        *v = r.U64();
      }
      break;
    }
    case VcpuStatePart::kRegisters: {
      Registers& g = s.registers.emplace();
      for (uint64_t* v : {&g.rax, &g.rbx, &g.rcx, &g.rdx, &g.rsi, &g.rdi, &g.rsp, &g.rbp, &g.r8,
                          &g.r9, &g.r10, &g.r11, &g.r12, &g.r13, &g.r14, &g.r15, &g.rip,
                          &g.rflags}) {
        *v = r.U64();
      }
      break;
    }
    case VcpuStatePart::kXcrs: {
      const uint32_t n = r.Count(16, kMaxEntries);
      s.xcrs.emplace(n);
      for (XcrEntry& x : *s.xcrs) {
        x.index = r.U32();
        if (r.U32() != 0) r.Fail("non-zero XCR padding");
        x.value = r.U64();
      }
      break;
    }
    case VcpuStatePart::kXsave:
    case VcpuStatePart::kLapic: {
      if (r.remaining() == 0 || r.remaining() > kMaxBlob) {
        r.Fail(std::string(ToString(part)) + " of " + std::to_string(r.remaining()) + " bytes");
      }
      (part == VcpuStatePart::kXsave ? s.xsave : s.lapic) = r.Rest();
      break;
    }
    case VcpuStatePart::kDebugRegisters: {
      DebugRegisters& d = s.debug_registers.emplace();
      for (uint64_t& v : d.db) v = r.U64();
      d.dr6 = r.U64(), d.dr7 = r.U64();
      break;
    }
    case VcpuStatePart::kMpState: {
      const uint8_t v = r.U8();
      r.Skip(3);
      if (v > static_cast<uint8_t>(MpState::kSipiReceived)) r.Fail("unknown MP state " + std::to_string(v));
      s.mp_state = static_cast<MpState>(v);
      break;
    }
    case VcpuStatePart::kEvents: {
      VcpuEvents& e = s.events.emplace();
      e.exception.injected = r.Bool(), e.exception.pending = r.Bool(), e.exception.vector = r.U8();
      e.exception.has_error_code = r.Bool(), e.exception.error_code = r.U32();
      const bool has_payload = r.Bool();
      r.Skip(7);
      const uint64_t payload = r.U64();
      if (has_payload) e.exception.payload = payload;
      e.interrupt.injected = r.Bool(), e.interrupt.vector = r.U8(), e.interrupt.soft = r.Bool();
      e.interrupt.shadow = r.U8();
      e.nmi.injected = r.Bool(), e.nmi.pending = r.Bool(), e.nmi.masked = r.Bool(), r.Skip(1);
      e.smi.smm = r.Bool(), e.smi.pending = r.Bool(), e.smi.inside_nmi = r.Bool();
      e.smi.latched_init = r.Bool();
      e.sipi_vector = r.U32(), e.triple_fault_pending = r.Bool(), r.Skip(3);
      break;
    }
    case VcpuStatePart::kTsc:
      s.tsc = r.U64();
      break;
  }
  r.ExpectEnd();
}

bool KnownPart(uint16_t id) {
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if (static_cast<uint16_t>(p) == id) return true;
  }
  return false;
}

}  // namespace

const char* ToString(VcpuStatePart part) {
  switch (part) {
    case VcpuStatePart::kCpuid: return "cpuid";
    case VcpuStatePart::kMsrs: return "msrs";
    case VcpuStatePart::kSpecialRegisters: return "special_registers";
    case VcpuStatePart::kRegisters: return "registers";
    case VcpuStatePart::kXcrs: return "xcrs";
    case VcpuStatePart::kXsave: return "xsave";
    case VcpuStatePart::kDebugRegisters: return "debug_registers";
    case VcpuStatePart::kMpState: return "mp_state";
    case VcpuStatePart::kLapic: return "lapic";
    case VcpuStatePart::kEvents: return "events";
    case VcpuStatePart::kTsc: return "tsc";
  }
  return "unknown";
}

void VcpuState::Reset(VcpuStatePart part) {
  switch (part) {
    case VcpuStatePart::kCpuid: cpuid.reset(); return;
    case VcpuStatePart::kMsrs: msrs.reset(); return;
    case VcpuStatePart::kSpecialRegisters: special_registers.reset(); return;
    case VcpuStatePart::kRegisters: registers.reset(); return;
    case VcpuStatePart::kXcrs: xcrs.reset(); return;
    case VcpuStatePart::kXsave: xsave.reset(); return;
    case VcpuStatePart::kDebugRegisters: debug_registers.reset(); return;
    case VcpuStatePart::kMpState: mp_state.reset(); return;
    case VcpuStatePart::kLapic: lapic.reset(); return;
    case VcpuStatePart::kEvents: events.reset(); return;
    case VcpuStatePart::kTsc: tsc.reset(); return;
  }
}

std::vector<VcpuStatePart> VcpuState::parts() const {
  std::vector<VcpuStatePart> out;
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if (Has(p)) out.push_back(p);
  }
  return out;
}

std::vector<uint8_t> SerializeVcpuState(const VcpuState& state) {
  StateWriter w(kMagic, state.backend);
  for (VcpuStatePart p : state.parts()) PutPart(w, p, state);
  return w.Take();
}

Result<VcpuState> ParseVcpuState(std::span<const uint8_t> bytes, std::string_view backend) {
  StateReader r(bytes, "ParseVcpuState");
  VcpuState s;
  if (!r.Header(kMagic, s.backend)) return r.error();
  if (!backend.empty() && s.backend != backend) {
    return Error::Make(ErrorCode::kInvalidArgument, "ParseVcpuState",
                       "the state was saved by backend " + s.backend + ", not " +
                           std::string(backend));
  }
  uint16_t id = 0;
  StateReader payload({}, "ParseVcpuState");
  while (r.NextRecord(id, payload)) {
    if (!KnownPart(id)) {
      return Error::Make(ErrorCode::kInvalidArgument, "ParseVcpuState",
                         "unknown part " + std::to_string(id));
    }
    const auto part = static_cast<VcpuStatePart>(id);
    if (s.Has(part)) {
      return Error::Make(ErrorCode::kInvalidArgument, "ParseVcpuState",
                         std::string("part ") + ToString(part) + " appears twice");
    }
    GetPart(payload, part, s);
    if (!payload.ok()) {
      Error e = payload.error();
      e.detail = std::string(ToString(part)) + ": " + e.detail;
      return e;
    }
  }
  if (!r.ok()) return r.error();
  return s;
}

}  // namespace virt
