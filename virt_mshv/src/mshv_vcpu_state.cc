// MshvVcpuState: each VcpuStatePart to and from its MSHV call (PartwiseVcpuState does the order,
// the refusals and the rollback).
#include "mshv_vcpu_state.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "mshv_hvcall.h"
#include "mshv_msr_names.h"
#include "mshv_vcpu.h"
#include "mshv_vcpu_events.h"

namespace virt::mshv {
namespace {

constexpr VcpuStatePart kAllParts[] = {
    VcpuStatePart::kCpuid,          VcpuStatePart::kMsrs,    VcpuStatePart::kSpecialRegisters,
    VcpuStatePart::kRegisters,      VcpuStatePart::kXcrs,    VcpuStatePart::kXsave,
    VcpuStatePart::kDebugRegisters, VcpuStatePart::kMpState, VcpuStatePart::kLapic,
    VcpuStatePart::kEvents,         VcpuStatePart::kTsc,
};
// Without the LAPIC (a partition created without PartitionConfig::irqchip).
constexpr VcpuStatePart kPartsWithoutLapic[] = {
    VcpuStatePart::kCpuid,          VcpuStatePart::kMsrs,    VcpuStatePart::kSpecialRegisters,
    VcpuStatePart::kRegisters,      VcpuStatePart::kXcrs,    VcpuStatePart::kXsave,
    VcpuStatePart::kDebugRegisters, VcpuStatePart::kMpState, VcpuStatePart::kEvents,
    VcpuStatePart::kTsc,
};

constexpr uint32_t kDebugNames[] = {HV_X64_REGISTER_DR0, HV_X64_REGISTER_DR1, HV_X64_REGISTER_DR2,
                                    HV_X64_REGISTER_DR3, HV_X64_REGISTER_DR6, HV_X64_REGISTER_DR7};
constexpr size_t kPage = 4096;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using PageBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

Error Invalid(const char* op, std::string detail) {
  return Error::Make(ErrorCode::kInvalidArgument, op, std::move(detail));
}

}  // namespace

MshvVcpuState::MshvVcpuState(std::shared_ptr<MshvIoctl> ioctl, int vp_fd, uint32_t vp_index,
                             Vcpu& vcpu, bool lapic)
    : ioctl_(std::move(ioctl)), vp_fd_(vp_fd), vp_index_(vp_index), vcpu_(vcpu), lapic_(lapic) {}

std::span<const VcpuStatePart> MshvVcpuState::supported_parts() const {
  if (lapic_) return kAllParts;
  return kPartsWithoutLapic;
}

Status MshvVcpuState::GetRegs(std::span<const uint32_t> names,
                              std::span<hv_register_value> values) {
  return GetVpRegisters(*ioctl_, vp_fd_, vp_index_, names, values);
}

Status MshvVcpuState::SetRegs(std::span<const hv_register_assoc> assocs) {
  return SetVpRegisters(*ioctl_, vp_fd_, vp_index_, assocs);
}

Result<std::vector<uint8_t>> MshvVcpuState::GetVpState(uint8_t type, size_t buffer) {
  PageBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(kPage, buffer)));
  if (!buf) return Error::Errno("aligned_alloc", ENOMEM);
  std::memset(buf.get(), 0, buffer);
  mshv_get_set_vp_state state{};
  state.type = type;
  state.buf_sz = static_cast<uint32_t>(buffer);
  state.buf_ptr = reinterpret_cast<uintptr_t>(buf.get());
  if (Status s = ioctl_->GetVpState(vp_fd_, &state); !s) return s.error();
  // The kernel reports the state's own size in buf_sz.
  if (state.buf_sz == 0 || state.buf_sz > buffer) {
    return Error::Make(ErrorCode::kNative, "MSHV_GET_VP_STATE",
                       "the kernel reported a state of " + std::to_string(state.buf_sz) +
                           " bytes for a buffer of " + std::to_string(buffer));
  }
  return std::vector<uint8_t>(buf.get(), buf.get() + state.buf_sz);
}

Status MshvVcpuState::SetVpState(uint8_t type, size_t buffer, const std::vector<uint8_t>& bytes) {
  PageBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(kPage, buffer)));
  if (!buf) return Error::Errno("aligned_alloc", ENOMEM);
  std::memset(buf.get(), 0, buffer);
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  mshv_get_set_vp_state state{};
  state.type = type;
  state.buf_sz = static_cast<uint32_t>(buffer);
  state.buf_ptr = reinterpret_cast<uintptr_t>(buf.get());
  return ioctl_->SetVpState(vp_fd_, state);
}

Status MshvVcpuState::SaveEvents(VcpuState& into) {
  hv_register_value values[kEventRegisterNames.size()];
  if (Status s = GetRegs(kEventRegisterNames, values); !s) return s;
  auto events = EventsFromHv({values[0], values[1], values[2]});
  if (!events) return events.error();
  into.events = *events;
  return Ok();
}

Status MshvVcpuState::LoadEvents(const VcpuEvents& events) {
  auto hv = EventsToHv(events);
  if (!hv) return hv.error();
  hv_register_assoc assocs[kEventRegisterNames.size()];
  const hv_register_value values[] = {hv->pending_interruption, hv->interrupt_state,
                                      hv->pending_event};
  for (size_t i = 0; i < kEventRegisterNames.size(); ++i) {
    assocs[i] = Assoc(kEventRegisterNames[i], 0);
    assocs[i].value = values[i];
  }
  return SetRegs(assocs);
}

Status MshvVcpuState::SavePart(VcpuStatePart part, VcpuState& into) {
  switch (part) {
    case VcpuStatePart::kCpuid: {
      auto c = vcpu_.cpuid()->GetCpuid();
      if (!c) return c.error();
      into.cpuid = std::move(*c);
      return Ok();
    }
    case VcpuStatePart::kMsrs: {
      std::vector<MsrEntry> msrs;
      for (const MsrRegisterName& m : kSaveableMsrs) msrs.push_back({m.msr, 0});
      if (Status s = vcpu_.GetMsrs(msrs); !s) return s;
      into.msrs = std::move(msrs);
      return Ok();
    }
    case VcpuStatePart::kSpecialRegisters: {
      auto s = vcpu_.GetSpecialRegisters();
      if (!s) return s.error();
      into.special_registers = *s;
      return Ok();
    }
    case VcpuStatePart::kRegisters: {
      auto r = vcpu_.GetRegisters();
      if (!r) return r.error();
      into.registers = *r;
      return Ok();
    }
    case VcpuStatePart::kXcrs: {
      const uint32_t name = HV_X64_REGISTER_XFEM;
      hv_register_value value{};
      if (Status s = GetRegs({&name, 1}, {&value, 1}); !s) return s;
      into.xcrs = std::vector<XcrEntry>{{0, value.low}};
      return Ok();
    }
    case VcpuStatePart::kXsave: {
      auto bytes = GetVpState(MSHV_VP_STATE_XSAVE, MshvVcpu::kXsaveBufferSize);
      if (!bytes) return bytes.error();
      into.xsave = std::move(*bytes);
      return Ok();
    }
    case VcpuStatePart::kDebugRegisters: {
      hv_register_value v[std::size(kDebugNames)];
      if (Status s = GetRegs(kDebugNames, v); !s) return s;
      into.debug_registers = DebugRegisters{{v[0].low, v[1].low, v[2].low, v[3].low}, v[4].low,
                                            v[5].low};
      return Ok();
    }
    case VcpuStatePart::kMpState: {
      auto m = vcpu_.mp_state()->GetMpState();
      if (!m) return m.error();
      into.mp_state = *m;
      return Ok();
    }
    case VcpuStatePart::kLapic: {
      auto bytes = GetVpState(MSHV_VP_STATE_LAPIC, kMshvLapicStateSize);
      if (!bytes) return bytes.error();
      into.lapic = std::move(*bytes);
      return Ok();
    }
    case VcpuStatePart::kEvents:
      return SaveEvents(into);
    case VcpuStatePart::kTsc: {
      const uint32_t name = HV_X64_REGISTER_TSC;
      hv_register_value value{};
      if (Status s = GetRegs({&name, 1}, {&value, 1}); !s) return s;
      into.tsc = value.low;
      return Ok();
    }
  }
  return Invalid("MshvVcpuState::SaveState", "unknown part");
}

Status MshvVcpuState::LoadPart(VcpuStatePart part, const VcpuState& from) {
  switch (part) {
    case VcpuStatePart::kCpuid: {
      // The table a vCPU already has is accepted even after it ran (SetCpuid refuses any table
      // then): restoring a state saved from this very vCPU works.
      auto now = vcpu_.cpuid()->GetCpuid();
      if (now && *now == *from.cpuid) return Ok();
      return vcpu_.cpuid()->SetCpuid(*from.cpuid);
    }
    case VcpuStatePart::kMsrs:
      return vcpu_.SetMsrs(*from.msrs);
    case VcpuStatePart::kSpecialRegisters:
      return vcpu_.SetSpecialRegisters(*from.special_registers);
    case VcpuStatePart::kRegisters:
      return vcpu_.SetRegisters(*from.registers);
    case VcpuStatePart::kXcrs: {
      const std::vector<XcrEntry>& xcrs = *from.xcrs;
      if (xcrs.empty()) return Ok();
      if (xcrs.size() != 1 || xcrs[0].index != 0) {
        return Invalid("MshvVcpuState::RestoreState",
                       "MSHV has XCR0 only (HV_X64_REGISTER_XFEM); the state holds " +
                           std::to_string(xcrs.size()) + " XCRs, the first XCR" +
                           std::to_string(xcrs[0].index));
      }
      const hv_register_assoc assoc = Assoc(HV_X64_REGISTER_XFEM, xcrs[0].value);
      return SetRegs({&assoc, 1});
    }
    case VcpuStatePart::kXsave:
      if (from.xsave->empty() || from.xsave->size() > MshvVcpu::kXsaveBufferSize) {
        return Invalid("MSHV_SET_VP_STATE", "an XSAVE area of " +
                                                std::to_string(from.xsave->size()) +
                                                " bytes; MSHV takes 1 to " +
                                                std::to_string(MshvVcpu::kXsaveBufferSize));
      }
      return SetVpState(MSHV_VP_STATE_XSAVE, MshvVcpu::kXsaveBufferSize, *from.xsave);
    case VcpuStatePart::kDebugRegisters: {
      const DebugRegisters& d = *from.debug_registers;
      const uint64_t values[] = {d.db[0], d.db[1], d.db[2], d.db[3], d.dr6, d.dr7};
      hv_register_assoc assocs[std::size(kDebugNames)];
      for (size_t i = 0; i < std::size(kDebugNames); ++i) {
        assocs[i] = Assoc(kDebugNames[i], values[i]);
      }
      return SetRegs(assocs);
    }
    case VcpuStatePart::kMpState:
      return vcpu_.mp_state()->SetMpState(*from.mp_state);
    case VcpuStatePart::kLapic:
      if (from.lapic->size() != kMshvLapicStateSize) {
        return Invalid("MSHV_SET_VP_STATE", "a LAPIC state of " +
                                                std::to_string(from.lapic->size()) +
                                                " bytes; MSHV's is one 4096-byte page");
      }
      return SetVpState(MSHV_VP_STATE_LAPIC, kMshvLapicStateSize, *from.lapic);
    case VcpuStatePart::kEvents:
      return LoadEvents(*from.events);
    case VcpuStatePart::kTsc: {
      const hv_register_assoc assoc = Assoc(HV_X64_REGISTER_TSC, *from.tsc);
      return SetRegs({&assoc, 1});
    }
  }
  return Invalid("MshvVcpuState::RestoreState", "unknown part");
}

}  // namespace virt::mshv
