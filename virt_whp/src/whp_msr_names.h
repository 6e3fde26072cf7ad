// The x86 MSRs WHP exposes as VP registers (WHvGet/SetVirtualProcessorRegisters), by index.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "virt/whp/whp_types.h"

namespace virt::whp {

struct WhpMsrName {
  uint32_t msr;
  WHV_REGISTER_NAME name;
};

// The MSRs a vCPU state saves (VcpuStatePart::kMsrs): the syscall/sysenter MSRs, the kernel GS
// base, PAT, TSC_AUX and the MTRRs (default type, 8 variable ranges, 11 fixed ranges). EFER and
// the APIC base travel with the special registers, the TSC is its own part.
inline constexpr size_t kWhpSaveableMsrCount = 10 + 1 + 16 + 11;
constexpr std::array<WhpMsrName, kWhpSaveableMsrCount> MakeWhpSaveableMsrs() {
  auto at = [](WHV_REGISTER_NAME first, uint32_t i) {
    return static_cast<WHV_REGISTER_NAME>(static_cast<uint32_t>(first) + i);
  };
  std::array<WhpMsrName, kWhpSaveableMsrCount> m{{
      {0x174, WHvX64RegisterSysenterCs},
      {0x175, WHvX64RegisterSysenterEsp},
      {0x176, WHvX64RegisterSysenterEip},
      {0x277, WHvX64RegisterPat},
      {0xC0000081, WHvX64RegisterStar},
      {0xC0000082, WHvX64RegisterLstar},
      {0xC0000083, WHvX64RegisterCstar},
      {0xC0000084, WHvX64RegisterSfmask},
      {0xC0000102, WHvX64RegisterKernelGsBase},
      {0xC0000103, WHvX64RegisterTscAux},
      {0x2FF, WHvX64RegisterMsrMtrrDefType},
  }};
  size_t n = 11;
  for (uint32_t i = 0; i < 8; ++i) {  // IA32_MTRR_PHYSBASEi 0x200 + 2i, PHYSMASKi 0x201 + 2i
    m[n++] = {0x200 + 2 * i, at(WHvX64RegisterMsrMtrrPhysBase0, i)};
    m[n++] = {0x201 + 2 * i, at(WHvX64RegisterMsrMtrrPhysMask0, i)};
  }
  m[n++] = {0x250, WHvX64RegisterMsrMtrrFix64k00000};
  m[n++] = {0x258, WHvX64RegisterMsrMtrrFix16k80000};
  m[n++] = {0x259, WHvX64RegisterMsrMtrrFix16kA0000};
  for (uint32_t i = 0; i < 8; ++i) {  // IA32_MTRR_FIX4K_C0000 .. _F8000: 0x268 .. 0x26F
    m[n++] = {0x268 + i, at(WHvX64RegisterMsrMtrrFix4kC0000, i)};
  }
  return m;
}
inline constexpr std::array<WhpMsrName, kWhpSaveableMsrCount> kWhpSaveableMsrs =
    MakeWhpSaveableMsrs();

// The register name of `msr`: the saveable ones, the TSC (0x10), the APIC base (0x1B) and EFER
// (0xC0000080); nullopt for any other.
constexpr std::optional<WHV_REGISTER_NAME> WhpMsrRegister(uint32_t msr) {
  switch (msr) {
    case 0x10: return WHvX64RegisterTsc;
    case 0x1B: return WHvX64RegisterApicBase;
    case 0xC0000080: return WHvX64RegisterEfer;
    default: break;
  }
  for (const WhpMsrName& m : kWhpSaveableMsrs) {
    if (m.msr == msr) return m.name;
  }
  return std::nullopt;
}

}  // namespace virt::whp
