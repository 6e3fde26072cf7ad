// ReadVpCpuid: enumerating a VP's CPUID leaves in HVCALL_GET_VP_CPUID_VALUES batches.
#include "mshv_cpuid.h"

#include <algorithm>
#include <vector>

#include "mshv_hvcall.h"

namespace virt::mshv {
namespace {

constexpr CpuidSubleafRange kSubleafRanges[] = {
    {0x4, 8},   {0x7, 4},    {0xB, 4},        {0xD, 64},       {0xF, 4},
    {0x10, 4},  {0x12, 4},   {0x14, 4},       {0x17, 4},       {0x18, 8},
    {0x1D, 2},  {0x1F, 6},   {0x20, 2},       {0x23, 4},       {0x24, 2},
    {0x8000001D, 8},         {0x80000020, 4}, {0x80000026, 4},
};

constexpr uint32_t kRangeBases[] = {0x0, 0x40000000, 0x80000000};

uint32_t SubleafCount(uint32_t function) {
  for (const CpuidSubleafRange& r : kSubleafRanges) {
    if (r.function == function) return r.count;
  }
  return 0;
}

hv_cpuid_leaf_info Leaf(uint32_t eax, uint32_t ecx) {
  hv_cpuid_leaf_info info{};
  info.eax = eax;
  info.ecx = ecx;  // xfem/xss stay 0: the VP's own are used (USE_VP_XFEM_XSS)
  return info;
}

CpuidEntry Entry(const hv_cpuid_leaf_info& in, const hv_output_get_vp_cpuid_values& out) {
  CpuidEntry e;
  e.function = in.eax;
  e.index = in.ecx;
  e.flags = SubleafCount(in.eax) != 0 ? kCpuidIndexSignificant : 0;
  e.eax = out.eax, e.ebx = out.ebx, e.ecx = out.ecx, e.edx = out.edx;
  return e;
}

// The last leaf of the range starting at `base`, from EAX of its first leaf, within the cap. A
// first leaf whose EAX is below the base (no such range) gives the base itself.
uint32_t LastLeaf(uint32_t base, uint32_t eax) {
  if (eax < base) return base;
  return std::min(eax, base + kMaxCpuidLeavesPerRange - 1);
}

}  // namespace

std::span<const CpuidSubleafRange> CpuidSubleafRanges() { return kSubleafRanges; }

Result<Cpuid> ReadVpCpuid(MshvIoctl& ioctl, int fd, uint32_t vp_index) {
  hv_cpuid_leaf_info firsts[std::size(kRangeBases)];
  hv_output_get_vp_cpuid_values first_values[std::size(kRangeBases)]{};
  for (size_t i = 0; i < std::size(kRangeBases); ++i) firsts[i] = Leaf(kRangeBases[i], 0);
  if (Status s = GetVpCpuidValues(ioctl, fd, vp_index, firsts, first_values); !s) {
    return s.error();
  }

  // Every (leaf, sub-leaf) to read, in order; the first leaves are read already.
  std::vector<hv_cpuid_leaf_info> leaves;
  for (size_t r = 0; r < std::size(kRangeBases); ++r) {
    const uint32_t base = kRangeBases[r];
    const uint32_t last = LastLeaf(base, first_values[r].eax);
    for (uint32_t function = base; function <= last; ++function) {
      const uint32_t count = std::max<uint32_t>(SubleafCount(function), 1);
      for (uint32_t index = function == base ? 1 : 0; index < count; ++index) {
        leaves.push_back(Leaf(function, index));
      }
    }
  }
  std::vector<hv_output_get_vp_cpuid_values> values(leaves.size());
  for (size_t at = 0; at < leaves.size(); at += kMaxCpuidLeavesPerCall) {
    const size_t n = std::min(kMaxCpuidLeavesPerCall, leaves.size() - at);
    if (Status s = GetVpCpuidValues(ioctl, fd, vp_index, std::span(leaves).subspan(at, n),
                                    std::span(values).subspan(at, n));
        !s) {
      return s.error();
    }
  }

  std::vector<CpuidEntry> entries;
  entries.reserve(std::size(firsts) + leaves.size());
  for (size_t i = 0; i < std::size(firsts); ++i) entries.push_back(Entry(firsts[i], first_values[i]));
  for (size_t i = 0; i < leaves.size(); ++i) {
    const hv_output_get_vp_cpuid_values& v = values[i];
    if (leaves[i].ecx > 0 && v.eax == 0 && v.ebx == 0 && v.ecx == 0 && v.edx == 0) continue;
    entries.push_back(Entry(leaves[i], values[i]));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const CpuidEntry& a, const CpuidEntry& b) {
    return a.function != b.function ? a.function < b.function : a.index < b.index;
  });
  return Cpuid(entries);
}

}  // namespace virt::mshv
