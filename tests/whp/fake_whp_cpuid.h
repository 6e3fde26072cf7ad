// FakeCpuidModel: the CPUID a small Intel-like host presents to FakeWhp's VPs, per leaf and
// sub-leaf, with the APIC ID leaves following the VP index as WHP's do.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "virt/whp/whp_types.h"

namespace virt::whp::test {

class FakeCpuidModel {
 public:
  // Max basic leaf 0x16, no hypervisor range, max extended leaf 0x80000008; leaf 1 ECX shows
  // x2APIC (21), TSC-deadline (24), XSAVE (26), AVX (28) and hypervisor (31); leaf 7.0 shows SMEP
  // and SMAP; sub-leaves for 4 (four caches), 7 (two), 0xB (two levels) and 0xD (x87, SSE, AVX).
  FakeCpuidModel() {
    Set(0x0, 0, false, {0x16, 0x756e6547, 0x6c65746e, 0x49656e69});  // "GenuineIntel"
    const uint32_t ecx1 = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 21) |
                          (1u << 24) | (1u << 26) | (1u << 28) | (1u << 31);
    Set(0x1, 0, false, {0x000906ED, 0x00100800, ecx1, 0x178BFBFF});
    Set(0x4, 0, true, {0x1C004121, 0x01C0003F, 0x3F, 0});
    Set(0x4, 1, true, {0x1C004122, 0x01C0003F, 0x3F, 0});
    Set(0x4, 2, true, {0x1C004143, 0x00C0003F, 0x3FF, 0});
    Set(0x4, 3, true, {0x1C03C163, 0x03C0003F, 0x3FFF, 6});
    Set(0x6, 0, false, {0x4, 0, 0, 0});
    Set(0x7, 0, true, {1, (1u << 0) | (1u << 7) | (1u << 20), 1u << 2, 0});
    Set(0x7, 1, true, {0x10, 0, 0, 0});
    Set(0xB, 0, true, {1, 1, 0x100, 0});
    Set(0xB, 1, true, {4, 4, 0x201, 0});
    Set(0xD, 0, true, {0x7, 0x340, 0x340, 0});
    Set(0xD, 1, true, {0x1, 0, 0, 0});
    Set(0xD, 2, true, {0x100, 0x240, 0, 0});
    Set(0x16, 0, false, {3000, 4400, 100, 0});
    Set(0x80000000, 0, false, {0x80000008, 0, 0, 0});
    Set(0x80000001, 0, false,
        {0, 0, 0x121, (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29)});
    Set(0x80000008, 0, false, {0x3027, 0, 0, 0});
  }

  // Adds or replaces CPUID(function, index); `indexed` as kCpuidIndexSignificant.
  void Set(uint32_t function, uint32_t index, bool indexed, WHV_CPUID_OUTPUT out) {
    leaves_[{function, indexed ? index : 0}] = {indexed, out};
  }
  void Remove(uint32_t function, uint32_t index = 0) { leaves_.erase({function, index}); }

  // What VP `vp` reads for CPUID(function, index) (zeros for an unknown leaf), with leaf 1
  // EBX[31:24] and leaf 0xB/0x1F EDX (the x2APIC ID) set to the VP index.
  WHV_CPUID_OUTPUT Read(uint32_t function, uint32_t index, uint32_t vp) const {
    WHV_CPUID_OUTPUT out{};
    if (auto it = leaves_.find({function, index}); it != leaves_.end() && it->second.first) {
      out = it->second.second;
    } else if (auto any = leaves_.find({function, 0});
               any != leaves_.end() && !any->second.first) {
      out = any->second.second;
    }
    if (function == 0x1) out.Ebx = (out.Ebx & 0x00FFFFFFu) | ((vp & 0xFFu) << 24);
    if (function == 0xB || function == 0x1F) out.Edx = vp;  // every sub-leaf, as on hardware
    return out;
  }

 private:
  std::map<std::pair<uint32_t, uint32_t>, std::pair<bool, WHV_CPUID_OUTPUT>> leaves_;
};

}  // namespace virt::whp::test
