// Enumeration of a VP's CPUID leaves and sub-leaves through WHvGetVirtualProcessorCpuidOutput.
#include "whp_cpuid_probe.h"

namespace virt::whp {
namespace {

constexpr uint32_t kMaxLeavesPerRange = 0x100;
constexpr uint32_t kMaxSubleaves = 64;
constexpr size_t kMaxEntries = 1024;

enum class Subleaves : uint8_t {
  kNone,          // one entry for every index
  kFirstOnly,     // indexed, sub-leaf 0 only
  kUntilType,     // until EAX[4:0] (cache type) is 0
  kUntilLevel,    // until ECX[15:8] (level type) is 0
  kMaxInEax,      // 0..sub-leaf 0 EAX
  kXsave,         // 0, 1 and each enabled state component
};

Subleaves RuleFor(uint32_t function) {
  switch (function) {
    case 0x4: case 0x8000001D: return Subleaves::kUntilType;
    case 0xB: case 0x1F: case 0x80000026: return Subleaves::kUntilLevel;
    case 0x7: case 0x14: case 0x17: case 0x18: case 0x1D: case 0x20: case 0x24:
      return Subleaves::kMaxInEax;
    case 0xD: return Subleaves::kXsave;
    case 0xF: case 0x10: case 0x12: case 0x1B: case 0x1E: case 0x23: case 0x80000020:
      return Subleaves::kFirstOnly;
    default: return Subleaves::kNone;
  }
}

class Walker {
 public:
  explicit Walker(const CpuidQuery& query) : query_(query) {}

  Status Range(uint32_t base) {
    auto top = Query(base, 0, false);
    if (!top) return top.error();
    uint32_t max = top->eax;
    if (base != 0 && (max < base || max - base >= kMaxLeavesPerRange)) {
      // No such range (e.g. no hypervisor leaves): the leaf's own answer is not a range top.
      return Ok();
    }
    if (max - base >= kMaxLeavesPerRange) max = base + kMaxLeavesPerRange - 1;
    table_.Set(*top);
    for (uint32_t f = base + 1; f <= max; ++f) {
      if (Status s = Leaf(f); !s) return s;
    }
    return Ok();
  }

  Cpuid Take() { return std::move(table_); }

 private:
  Result<CpuidEntry> Query(uint32_t function, uint32_t index, bool indexed) {
    auto out = query_(function, index);
    if (!out) return out.error();
    CpuidEntry e = *out;
    e.function = function;
    e.index = indexed ? index : 0;
    e.flags = indexed ? kCpuidIndexSignificant : 0;
    return e;
  }

  Status Add(uint32_t function, uint32_t index, CpuidEntry* got = nullptr) {
    if (table_.size() >= kMaxEntries) return Ok();
    auto e = Query(function, index, true);
    if (!e) return e.error();
    table_.Set(*e);
    if (got != nullptr) *got = *e;
    return Ok();
  }

  Status Leaf(uint32_t f) {
    const Subleaves rule = RuleFor(f);
    if (rule == Subleaves::kNone) {
      auto e = Query(f, 0, false);
      if (!e) return e.error();
      if (table_.size() < kMaxEntries) table_.Set(*e);
      return Ok();
    }
    CpuidEntry first;
    if (Status s = Add(f, 0, &first); !s) return s;
    switch (rule) {
      case Subleaves::kUntilType:
      case Subleaves::kUntilLevel: {
        CpuidEntry e = first;
        for (uint32_t i = 1; i < kMaxSubleaves; ++i) {
          const bool more = rule == Subleaves::kUntilType ? (e.eax & 0x1F) != 0
                                                          : ((e.ecx >> 8) & 0xFF) != 0;
          if (!more) break;
          if (Status s = Add(f, i, &e); !s) return s;
        }
        return Ok();
      }
      case Subleaves::kMaxInEax: {
        const uint32_t last = first.eax < kMaxSubleaves ? first.eax : kMaxSubleaves - 1;
        for (uint32_t i = 1; i <= last; ++i) {
          if (Status s = Add(f, i); !s) return s;
        }
        return Ok();
      }
      case Subleaves::kXsave: {
        CpuidEntry second;
        if (Status s = Add(f, 1, &second); !s) return s;
        const uint64_t components = (uint64_t{first.edx} << 32 | first.eax) |
                                    (uint64_t{second.edx} << 32 | second.ecx);
        for (uint32_t i = 2; i < kMaxSubleaves; ++i) {
          if ((components >> i) & 1) {
            if (Status s = Add(f, i); !s) return s;
          }
        }
        return Ok();
      }
      case Subleaves::kNone:
      case Subleaves::kFirstOnly:
        return Ok();
    }
    return Ok();
  }

  const CpuidQuery& query_;
  Cpuid table_;
};

}  // namespace

Result<Cpuid> EnumerateCpuid(const CpuidQuery& query) {
  Walker walker(query);
  for (uint32_t base : {0x0u, 0x40000000u, 0x80000000u}) {
    if (Status s = walker.Range(base); !s) return s.error();
  }
  return walker.Take();
}

Result<Cpuid> ProbeCpuid(WhpApi& api, WHV_PARTITION_HANDLE partition, uint32_t vp) {
  return EnumerateCpuid([&](uint32_t function, uint32_t index) -> Result<CpuidEntry> {
    WHV_CPUID_OUTPUT out{};
    if (Status s = api.GetVirtualProcessorCpuidOutput(partition, vp, function, index, &out); !s) {
      return s.error();
    }
    return CpuidEntry{.function = function, .index = index, .flags = 0,
                      .eax = out.Eax, .ebx = out.Ebx, .ecx = out.Ecx, .edx = out.Edx};
  });
}

}  // namespace virt::whp
