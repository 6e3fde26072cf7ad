// WhpVcpuState: each VcpuStatePart to and from its WHv call (PartwiseVcpuState does the order,
// the refusals and the rollback).
#include "whp_vcpu_state.h"

#include <string>
#include <utility>

#include "whp_msr_names.h"
#include "whp_vcpu_events.h"

namespace virt::whp {
namespace {

constexpr WHV_REGISTER_NAME kDebugNames[] = {WHvX64RegisterDr0, WHvX64RegisterDr1,
                                             WHvX64RegisterDr2, WHvX64RegisterDr3,
                                             WHvX64RegisterDr6, WHvX64RegisterDr7};

Error Invalid(const char* op, std::string detail) {
  return Error::Make(ErrorCode::kInvalidArgument, op, std::move(detail));
}

WHV_REGISTER_VALUE Value64(uint64_t v) {
  WHV_REGISTER_VALUE value{};
  value.Reg64 = v;
  return value;
}

}  // namespace

WhpVcpuState::WhpVcpuState(WhpPartitionHandle& partition, uint32_t index, Vcpu& vcpu, bool cpuid,
                           bool irqchip)
    : partition_(partition), index_(index), vcpu_(vcpu) {
  for (VcpuStatePart p : kVcpuRestoreOrder) {
    if (p == VcpuStatePart::kCpuid && !cpuid) continue;
    if ((p == VcpuStatePart::kMpState || p == VcpuStatePart::kLapic) && !irqchip) continue;
    parts_.push_back(p);
  }
}

Status WhpVcpuState::GetRegs(std::span<const WHV_REGISTER_NAME> names,
                             std::span<WHV_REGISTER_VALUE> values) {
  return partition_.api().GetVirtualProcessorRegisters(
      partition_.get(), index_, names.data(), static_cast<uint32_t>(names.size()), values.data());
}

Status WhpVcpuState::SetRegs(std::span<const WHV_REGISTER_NAME> names,
                             std::span<const WHV_REGISTER_VALUE> values) {
  return partition_.api().SetVirtualProcessorRegisters(
      partition_.get(), index_, names.data(), static_cast<uint32_t>(names.size()), values.data());
}

Status WhpVcpuState::SaveEvents(VcpuState& into) {
  WHV_REGISTER_VALUE values[kEventRegisterNames.size()];
  if (Status s = GetRegs(kEventRegisterNames, values); !s) return s;
  auto events = EventsFromWhp({values[0], values[1], values[2]});
  if (!events) return events.error();
  into.events = *events;
  return Ok();
}

Status WhpVcpuState::LoadEvents(const VcpuEvents& events) {
  auto whp = EventsToWhp(events);
  if (!whp) return whp.error();
  const WHV_REGISTER_VALUE values[] = {whp->pending_interruption, whp->interrupt_state,
                                       whp->pending_event};
  return SetRegs(kEventRegisterNames, values);
}

Status WhpVcpuState::SavePart(VcpuStatePart part, VcpuState& into) {
  WhpApi& api = partition_.api();
  switch (part) {
    case VcpuStatePart::kCpuid: {
      auto c = vcpu_.cpuid()->GetCpuid();
      if (!c) return c.error();
      into.cpuid = std::move(*c);
      return Ok();
    }
    case VcpuStatePart::kMsrs: {
      std::vector<MsrEntry> msrs;
      for (const WhpMsrName& m : kWhpSaveableMsrs) msrs.push_back({m.msr, 0});
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
      const WHV_REGISTER_NAME name = WHvX64RegisterXCr0;
      WHV_REGISTER_VALUE value{};
      if (Status s = GetRegs({&name, 1}, {&value, 1}); !s) return s;
      into.xcrs = std::vector<XcrEntry>{{0, value.Reg64}};
      return Ok();
    }
    case VcpuStatePart::kXsave: {
      std::vector<uint8_t> bytes(kXsaveBufferSize, 0);
      uint32_t written = 0;
      if (Status s = api.GetVirtualProcessorXsaveState(partition_.get(), index_, bytes.data(),
                                                       kXsaveBufferSize, &written);
          !s) {
        return s;
      }
      if (written == 0 || written > kXsaveBufferSize) {
        return Error::Make(ErrorCode::kNative, "WHvGetVirtualProcessorXsaveState",
                           "WHP reported an XSAVE area of " + std::to_string(written) +
                               " bytes for a buffer of " + std::to_string(kXsaveBufferSize));
      }
      bytes.resize(written);
      into.xsave = std::move(bytes);
      return Ok();
    }
    case VcpuStatePart::kDebugRegisters: {
      WHV_REGISTER_VALUE v[std::size(kDebugNames)];
      if (Status s = GetRegs(kDebugNames, v); !s) return s;
      into.debug_registers = DebugRegisters{{v[0].Reg64, v[1].Reg64, v[2].Reg64, v[3].Reg64},
                                            v[4].Reg64, v[5].Reg64};
      return Ok();
    }
    case VcpuStatePart::kMpState: {
      auto m = vcpu_.mp_state()->GetMpState();
      if (!m) return m.error();
      into.mp_state = *m;
      return Ok();
    }
    case VcpuStatePart::kLapic: {
      std::vector<uint8_t> bytes(kLapicStateSize, 0);
      uint32_t written = 0;
      if (Status s = api.GetVirtualProcessorInterruptControllerState2(
              partition_.get(), index_, bytes.data(), kLapicStateSize, &written);
          !s) {
        return s;
      }
      if (written != kLapicStateSize) {
        return Error::Make(ErrorCode::kNative, "WHvGetVirtualProcessorInterruptControllerState2",
                           "WHP wrote a LAPIC state of " + std::to_string(written) +
                               " bytes; a register page is 4096");
      }
      into.lapic = std::move(bytes);
      return Ok();
    }
    case VcpuStatePart::kEvents:
      return SaveEvents(into);
    case VcpuStatePart::kTsc: {
      const WHV_REGISTER_NAME name = WHvX64RegisterTsc;
      WHV_REGISTER_VALUE value{};
      if (Status s = GetRegs({&name, 1}, {&value, 1}); !s) return s;
      into.tsc = value.Reg64;
      return Ok();
    }
  }
  return Invalid("WhpVcpuState::SaveState", "unknown part");
}

Status WhpVcpuState::LoadPart(VcpuStatePart part, const VcpuState& from) {
  WhpApi& api = partition_.api();
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
        return Invalid("WhpVcpuState::RestoreState",
                       "WHP has XCR0 only (WHvX64RegisterXCr0); the state holds " +
                           std::to_string(xcrs.size()) + " XCRs, the first XCR" +
                           std::to_string(xcrs[0].index));
      }
      const WHV_REGISTER_NAME name = WHvX64RegisterXCr0;
      const WHV_REGISTER_VALUE value = Value64(xcrs[0].value);
      return SetRegs({&name, 1}, {&value, 1});
    }
    case VcpuStatePart::kXsave:
      if (from.xsave->empty() || from.xsave->size() > kXsaveBufferSize) {
        return Invalid("WHvSetVirtualProcessorXsaveState",
                       "an XSAVE area of " + std::to_string(from.xsave->size()) +
                           " bytes; WHP takes 1 to " + std::to_string(kXsaveBufferSize));
      }
      return api.SetVirtualProcessorXsaveState(partition_.get(), index_, from.xsave->data(),
                                               static_cast<uint32_t>(from.xsave->size()));
    case VcpuStatePart::kDebugRegisters: {
      const DebugRegisters& d = *from.debug_registers;
      const WHV_REGISTER_VALUE values[] = {Value64(d.db[0]), Value64(d.db[1]), Value64(d.db[2]),
                                           Value64(d.db[3]), Value64(d.dr6),   Value64(d.dr7)};
      return SetRegs(kDebugNames, values);
    }
    case VcpuStatePart::kMpState:
      return vcpu_.mp_state()->SetMpState(*from.mp_state);
    case VcpuStatePart::kLapic:
      if (from.lapic->size() != kLapicStateSize) {
        return Invalid("WHvSetVirtualProcessorInterruptControllerState2",
                       "a LAPIC state of " + std::to_string(from.lapic->size()) +
                           " bytes; WHP's is one 4096-byte register page");
      }
      return api.SetVirtualProcessorInterruptControllerState2(
          partition_.get(), index_, from.lapic->data(), kLapicStateSize);
    case VcpuStatePart::kEvents:
      return LoadEvents(*from.events);
    case VcpuStatePart::kTsc: {
      const WHV_REGISTER_NAME name = WHvX64RegisterTsc;
      const WHV_REGISTER_VALUE value = Value64(*from.tsc);
      return SetRegs({&name, 1}, {&value, 1});
    }
  }
  return Invalid("WhpVcpuState::RestoreState", "unknown part");
}

}  // namespace virt::whp
