// The x86 MSRs the Microsoft hypervisor exposes as VP registers, and their register names.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "virt/mshv/hv_abi.h"

namespace virt::mshv {

struct MsrRegisterName {
  uint32_t msr;
  uint32_t name;  // hv_register_name
};

// The MSRs a vCPU state saves (VcpuStatePart::kMsrs): the syscall/sysenter MSRs, the kernel GS
// base, PAT, TSC_AUX and the MTRRs (default type, 8 variable ranges, 11 fixed ranges). EFER and
// the APIC base travel with the special registers, the TSC is its own part.
inline constexpr size_t kSaveableMsrCount = 10 + 1 + 16 + 11;
constexpr std::array<MsrRegisterName, kSaveableMsrCount> MakeSaveableMsrs() {
  std::array<MsrRegisterName, kSaveableMsrCount> m{{
      {0x174, HV_X64_REGISTER_SYSENTER_CS},
      {0x175, HV_X64_REGISTER_SYSENTER_ESP},
      {0x176, HV_X64_REGISTER_SYSENTER_EIP},
      {0x277, HV_X64_REGISTER_PAT},
      {0xC0000081, HV_X64_REGISTER_STAR},
      {0xC0000082, HV_X64_REGISTER_LSTAR},
      {0xC0000083, HV_X64_REGISTER_CSTAR},
      {0xC0000084, HV_X64_REGISTER_SFMASK},
      {0xC0000102, HV_X64_REGISTER_KERNEL_GS_BASE},
      {0xC0000103, HV_X64_REGISTER_TSC_AUX},
      {0x2FF, HV_X64_REGISTER_MSR_MTRR_DEF_TYPE},
  }};
  size_t n = 11;
  for (uint32_t i = 0; i < 8; ++i) {  // IA32_MTRR_PHYSBASEi 0x200 + 2i, PHYSMASKi 0x201 + 2i
    m[n++] = {0x200 + 2 * i, HV_X64_REGISTER_MSR_MTRR_PHYS_BASE0 + i};
    m[n++] = {0x201 + 2 * i, HV_X64_REGISTER_MSR_MTRR_PHYS_MASK0 + i};
  }
  m[n++] = {0x250, HV_X64_REGISTER_MSR_MTRR_FIX64K00000};
  m[n++] = {0x258, HV_X64_REGISTER_MSR_MTRR_FIX16K80000};
  m[n++] = {0x259, HV_X64_REGISTER_MSR_MTRR_FIX16KA0000};
  for (uint32_t i = 0; i < 8; ++i) {  // IA32_MTRR_FIX4K_C0000 .. _F8000: 0x268 .. 0x26F
    m[n++] = {0x268 + i, HV_X64_REGISTER_MSR_MTRR_FIX4KC0000 + i};
  }
  return m;
}
inline constexpr std::array<MsrRegisterName, kSaveableMsrCount> kSaveableMsrs = MakeSaveableMsrs();

// The register name of `msr`: the saveable ones, the TSC (0x10), the APIC base (0x1B) and EFER
// (0xC0000080); nullopt for any other.
constexpr std::optional<uint32_t> MsrRegister(uint32_t msr) {
  switch (msr) {
    case 0x10: return HV_X64_REGISTER_TSC;
    case 0x1B: return HV_X64_REGISTER_APIC_BASE;
    case 0xC0000080: return HV_X64_REGISTER_EFER;
    default: break;
  }
  for (const MsrRegisterName& m : kSaveableMsrs) {
    if (m.msr == msr) return m.name;
  }
  return std::nullopt;
}

}  // namespace virt::mshv
