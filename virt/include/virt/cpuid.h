// Cpuid: a vCPU's CPUID table as a value (entries, lookup, feature bits, APIC ID leaves).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "virt/result.h"

namespace virt {

// One CPUID leaf as the guest sees it: CPUID(function, index) -> eax..edx. `index` matters only
// with kCpuidIndexSignificant (leaves with sub-leaves: 4, 7, 0xB, 0xD, 0x1F ...); otherwise
// every index of `function` answers with this entry. Same meaning as kvm_cpuid_entry2.
struct CpuidEntry {
  uint32_t function = 0;
  uint32_t index = 0;
  uint32_t flags = 0;  // kCpuidIndexSignificant or 0
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  bool operator==(const CpuidEntry&) const = default;
};

// CpuidEntry::flags: the entry applies to its `index` only (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).
inline constexpr uint32_t kCpuidIndexSignificant = 1;

enum class CpuidRegister : uint8_t { kEax, kEbx, kEcx, kEdx };

// One feature bit: CPUID(function, index).reg[bit].
struct CpuidFeature {
  uint32_t function = 0;
  uint32_t index = 0;
  CpuidRegister reg = CpuidRegister::kEax;
  uint8_t bit = 0;
  const char* name = "";  // as `virt-run --cpu` spells it
  bool operator==(const CpuidFeature& o) const {
    return function == o.function && index == o.index && reg == o.reg && bit == o.bit;
  }
};

// The feature bits VMMs toggle most often.
namespace cpuid_feature {
inline constexpr CpuidFeature kX2Apic{1, 0, CpuidRegister::kEcx, 21, "x2apic"};
inline constexpr CpuidFeature kTscDeadline{1, 0, CpuidRegister::kEcx, 24, "tsc-deadline"};
inline constexpr CpuidFeature kHypervisor{1, 0, CpuidRegister::kEcx, 31, "hypervisor"};
inline constexpr CpuidFeature kPcid{1, 0, CpuidRegister::kEcx, 17, "pcid"};
inline constexpr CpuidFeature kXsave{1, 0, CpuidRegister::kEcx, 26, "xsave"};
inline constexpr CpuidFeature kAvx{1, 0, CpuidRegister::kEcx, 28, "avx"};
inline constexpr CpuidFeature kApic{1, 0, CpuidRegister::kEdx, 9, "apic"};
inline constexpr CpuidFeature kSmep{7, 0, CpuidRegister::kEbx, 7, "smep"};
inline constexpr CpuidFeature kSmap{7, 0, CpuidRegister::kEbx, 20, "smap"};
inline constexpr CpuidFeature kUmip{7, 0, CpuidRegister::kEcx, 2, "umip"};
inline constexpr CpuidFeature kPku{7, 0, CpuidRegister::kEcx, 3, "pku"};
inline constexpr CpuidFeature kLa57{7, 0, CpuidRegister::kEcx, 16, "la57"};
inline constexpr CpuidFeature kNx{0x80000001, 0, CpuidRegister::kEdx, 20, "nx"};
inline constexpr CpuidFeature kRdtscp{0x80000001, 0, CpuidRegister::kEdx, 27, "rdtscp"};
}  // namespace cpuid_feature

// Every feature above, for lookups by name.
std::span<const CpuidFeature> KnownCpuidFeatures();
// The known feature spelled `name` ("x2apic", "tsc-deadline", ...), or nullopt.
std::optional<CpuidFeature> FindCpuidFeature(std::string_view name);

// A CPUID table: what KVM_GET_SUPPORTED_CPUID returns and KVM_SET_CPUID2 takes. Entries keep
// the order they were given in; (function, index) pairs are unique. A plain value: copy it,
// edit it, compare it.
class Cpuid {
 public:
  Cpuid() = default;
  // Later duplicates of a (function, index) pair replace earlier ones.
  explicit Cpuid(std::span<const CpuidEntry> entries);
  // Copies are independent tables. Assigning a copy of the same, unchanged table copies
  // nothing (see version_); a moved-from table is empty.
  Cpuid(const Cpuid&) = default;
  Cpuid(Cpuid&& other) noexcept;
  Cpuid& operator=(const Cpuid& other);
  Cpuid& operator=(Cpuid&& other) noexcept;

  std::span<const CpuidEntry> entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  // The entry CPUID(function, index) answers with: an exact (function, index) match, or the
  // entry of `function` without kCpuidIndexSignificant. nullptr when there is none (the
  // hypervisor then answers with zeros or its own fallback).
  const CpuidEntry* Find(uint32_t function, uint32_t index = 0) const;
  // The mutable pointer stays valid until the table next changes; writes through it change
  // this table only, not copies made before or after.
  CpuidEntry* Find(uint32_t function, uint32_t index = 0);

  // Adds `entry`, or replaces the one with the same function and index.
  void Set(const CpuidEntry& entry);
  // Removes the entry for (function, index); false when there was none.
  bool Remove(uint32_t function, uint32_t index = 0);

  // Whether the feature bit is set (false when its leaf is absent).
  bool Has(const CpuidFeature& feature) const;
  // Sets or clears the feature bit. kNotFound (naming the leaf) when the table has no entry for
  // it: a VMM cannot show a feature the hypervisor does not report. Nothing changes on error.
  Status SetFeature(const CpuidFeature& feature, bool on);

  // Makes the table describe the vCPU with this APIC ID: leaf 1 EBX[31:24] (the low 8 bits)
  // and EDX of every sub-leaf of 0xB and 0x1F (the x2APIC ID). Leaves that are absent stay so.
  void SetApicId(uint32_t apic_id);
  // The initial APIC ID the table reports (leaf 0xB EDX when present, else leaf 1 EBX[31:24]).
  std::optional<uint32_t> ApicId() const;

  // Describes vCPU `apic_id` of a partition with `vcpu_count` vCPUs as one package of
  // `vcpu_count` cores with one thread each (KVM leaves the topology leaves to the VMM: its
  // supported 0xB / 0x1F entries are zero). Sets leaf 1 EBX[31:24] = apic_id, EBX[23:16] = the
  // package's addressable IDs (vcpu_count rounded up to a power of two) and EDX[28] (HTT) when
  // vcpu_count > 1; and, when leaf 0 says the leaf exists, leaf 0xB sub-leaves 0 (SMT: shift 0,
  // 1 thread), 1 (core: shift log2 of that power of two, vcpu_count processors) and 2 (invalid
  // level) with EDX = apic_id, replacing whatever 0xB entries the table had; leaf 0x1F the
  // same when the table has it. kInvalidArgument for vcpu_count 0 or apic_id >= vcpu_count's
  // power of two; nothing changes on error.
  Status SetTopology(uint32_t apic_id, uint32_t vcpu_count);

  // Same entries in the same order (one memcmp: CpuidEntry is seven 32-bit fields, no padding;
  // nothing to compare for two copies of one unchanged table).
  bool operator==(const Cpuid& other) const;

 private:
  // Finds without forgetting version_ (for this class's own changes, which draw a new one).
  CpuidEntry* FindForChange(uint32_t function, uint32_t index);
  // The entries changed: a version no other table has had.
  void Changed();

  std::vector<CpuidEntry> entries_;
  // Which contents entries_ holds: drawn process-wide unique whenever this class builds or
  // changes the entries, carried along by copies; 0 (unknown) after the mutable Find, whose
  // pointer can change entries unseen. Two tables with the same non-zero version hold the same
  // entries, so == and the copy-assignment of an unchanged copy skip their work (a vCPU state
  // save and restore compares and copies the same table every time).
  uint64_t version_ = 0;
};

}  // namespace virt
