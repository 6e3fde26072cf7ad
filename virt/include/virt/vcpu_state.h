// VcpuState: everything a vCPU holds, as one value a VMM saves, serialises and restores.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "virt/cpuid.h"
#include "virt/mp_state.h"
#include "virt/registers.h"

namespace virt {

// The parts of a VcpuState, in the order RestoreState applies them (see kVcpuRestoreOrder).
enum class VcpuStatePart : uint16_t {
  kCpuid = 1,
  kMsrs = 2,
  kSpecialRegisters = 3,
  kRegisters = 4,
  kXcrs = 5,
  kXsave = 6,
  kDebugRegisters = 7,
  kMpState = 8,
  kLapic = 9,
  kEvents = 10,
  kTsc = 11,
};

const char* ToString(VcpuStatePart part);

// Why this order, enforced by every backend's RestoreState:
//  - CPUID first: KVM refuses EFER.LME, CR4 and XCR0 bits the CPUID does not show;
//  - MSRs before the registers: some MSRs (APIC base, EFER via sregs) constrain them;
//  - XCRs before XSAVE: XCR0 says which XSAVE components may be loaded;
//  - the MP state, then the LAPIC, then the events: events carry pending interrupts and
//    exceptions that the LAPIC state and the MP state must already be there to take;
//  - the TSC last, so nothing restored after it moves the guest's clock.
inline constexpr std::array<VcpuStatePart, 11> kVcpuRestoreOrder = {
    VcpuStatePart::kCpuid,         VcpuStatePart::kMsrs,      VcpuStatePart::kSpecialRegisters,
    VcpuStatePart::kRegisters,     VcpuStatePart::kXcrs,      VcpuStatePart::kXsave,
    VcpuStatePart::kDebugRegisters, VcpuStatePart::kMpState,  VcpuStatePart::kLapic,
    VcpuStatePart::kEvents,        VcpuStatePart::kTsc,
};

struct XcrEntry {
  uint32_t index = 0;  // 0: XCR0
  uint64_t value = 0;
  bool operator==(const XcrEntry&) const = default;
};

struct DebugRegisters {
  std::array<uint64_t, 4> db{};
  uint64_t dr6 = 0xffff0ff0;
  uint64_t dr7 = 0x400;
  bool operator==(const DebugRegisters&) const = default;
};

// Events the vCPU has pending or is delivering (KVM_GET_VCPU_EVENTS' meaning): what
// KVM_SET_SREGS' interrupt bitmap cannot carry on other hypervisors.
struct VcpuEvents {
  struct Exception {
    bool injected = false;  // being delivered
    bool pending = false;   // raised, not yet delivered
    uint8_t vector = 0;
    bool has_error_code = false;
    uint32_t error_code = 0;
    std::optional<uint64_t> payload;  // CR2 of a #PF, DR6 bits of a #DB (exception payloads)
    bool operator==(const Exception&) const = default;
  } exception;
  struct Interrupt {
    bool injected = false;
    uint8_t vector = 0;
    bool soft = false;    // INTn
    uint8_t shadow = 0;   // STI (1) / MOV SS (2) interrupt shadow
    bool operator==(const Interrupt&) const = default;
  } interrupt;
  struct Nmi {
    bool injected = false;
    bool pending = false;
    bool masked = false;
    bool operator==(const Nmi&) const = default;
  } nmi;
  struct Smi {
    bool smm = false;
    bool pending = false;
    bool inside_nmi = false;
    bool latched_init = false;
    bool operator==(const Smi&) const = default;
  } smi;
  uint32_t sipi_vector = 0;
  bool triple_fault_pending = false;
  bool operator==(const VcpuEvents&) const = default;
};

// A vCPU's state. Each part is present when the backend that saved it has it; a part in the
// hypervisor's own layout (XSAVE area, LAPIC page) is kept as bytes, so a state restores only
// into the backend named in `backend` (RestoreState refuses others, and refuses parts the
// backend cannot load instead of dropping them).
struct VcpuState {
  std::string backend;  // Hypervisor::name() of the backend that saved it

  std::optional<Cpuid> cpuid;
  std::optional<std::vector<MsrEntry>> msrs;  // every MSR the hypervisor says is saveable
  std::optional<SpecialRegisters> special_registers;
  std::optional<Registers> registers;
  std::optional<std::vector<XcrEntry>> xcrs;
  std::optional<std::vector<uint8_t>> xsave;  // KVM: the XSAVE image, KVM_GET_XSAVE2's size
  std::optional<DebugRegisters> debug_registers;
  std::optional<MpState> mp_state;
  std::optional<std::vector<uint8_t>> lapic;  // KVM: kvm_lapic_state (1 KiB register page)
  std::optional<VcpuEvents> events;
  std::optional<uint64_t> tsc;

  bool Has(VcpuStatePart part) const {  // inline: a restore asks it of every part
    switch (part) {
      case VcpuStatePart::kCpuid: return cpuid.has_value();
      case VcpuStatePart::kMsrs: return msrs.has_value();
      case VcpuStatePart::kSpecialRegisters: return special_registers.has_value();
      case VcpuStatePart::kRegisters: return registers.has_value();
      case VcpuStatePart::kXcrs: return xcrs.has_value();
      case VcpuStatePart::kXsave: return xsave.has_value();
      case VcpuStatePart::kDebugRegisters: return debug_registers.has_value();
      case VcpuStatePart::kMpState: return mp_state.has_value();
      case VcpuStatePart::kLapic: return lapic.has_value();
      case VcpuStatePart::kEvents: return events.has_value();
      case VcpuStatePart::kTsc: return tsc.has_value();
    }
    return false;
  }
  // Drops `part` (its optional becomes empty).
  void Reset(VcpuStatePart part);
  // The parts present, in kVcpuRestoreOrder.
  std::vector<VcpuStatePart> parts() const;

  bool operator==(const VcpuState&) const = default;
};

// The versioned byte form of a VcpuState (documented in docs/state-format.md): magic
// "VIRTVCPU", format version, backend name, then one record per present part. Plain bytes a
// VMM can write to a file.
std::vector<uint8_t> SerializeVcpuState(const VcpuState& state);

// Parses bytes made by SerializeVcpuState. kInvalidArgument, naming what is wrong, for another
// magic, an unknown format version, a truncated or oversized record, an unknown or repeated
// part, or a malformed value; when `backend` is not empty, also for a state of another backend.
Result<VcpuState> ParseVcpuState(std::span<const uint8_t> bytes, std::string_view backend = {});

}  // namespace virt
