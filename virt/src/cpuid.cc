// Cpuid: lookup and editing of a CPUID table, and the named feature bits.
#include "virt/cpuid.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace virt {
namespace {

constexpr CpuidFeature kKnown[] = {
    cpuid_feature::kX2Apic, cpuid_feature::kTscDeadline, cpuid_feature::kHypervisor,
    cpuid_feature::kPcid,   cpuid_feature::kXsave,       cpuid_feature::kAvx,
    cpuid_feature::kApic,   cpuid_feature::kSmep,        cpuid_feature::kSmap,
    cpuid_feature::kUmip,   cpuid_feature::kPku,         cpuid_feature::kLa57,
    cpuid_feature::kNx,     cpuid_feature::kRdtscp,
};

uint32_t& Reg(CpuidEntry& e, CpuidRegister r) {
  switch (r) {
    case CpuidRegister::kEax: return e.eax;
    case CpuidRegister::kEbx: return e.ebx;
    case CpuidRegister::kEcx: return e.ecx;
    case CpuidRegister::kEdx: break;
  }
  return e.edx;
}

uint32_t Reg(const CpuidEntry& e, CpuidRegister r) { return Reg(const_cast<CpuidEntry&>(e), r); }

bool SameSlot(const CpuidEntry& a, uint32_t function, uint32_t index) {
  return a.function == function && a.index == index;
}

}  // namespace

std::span<const CpuidFeature> KnownCpuidFeatures() { return kKnown; }

std::optional<CpuidFeature> FindCpuidFeature(std::string_view name) {
  for (const CpuidFeature& f : kKnown) {
    if (name == f.name) return f;
  }
  return std::nullopt;
}

static_assert(std::has_unique_object_representations_v<CpuidEntry>,
              "Cpuid::operator== compares entries bytewise");

namespace {
std::atomic<uint64_t> g_next_version{1};
}  // namespace

void Cpuid::Changed() { version_ = g_next_version.fetch_add(1, std::memory_order_relaxed); }

Cpuid::Cpuid(Cpuid&& other) noexcept
    : entries_(std::move(other.entries_)), version_(std::exchange(other.version_, 0)) {
  other.entries_.clear();
}

Cpuid& Cpuid::operator=(const Cpuid& other) {
  if (version_ == 0 || version_ != other.version_) entries_ = other.entries_;
  version_ = other.version_;
  return *this;
}

Cpuid& Cpuid::operator=(Cpuid&& other) noexcept {
  if (this == &other) return *this;
  entries_ = std::move(other.entries_);
  other.entries_.clear();
  version_ = std::exchange(other.version_, 0);
  return *this;
}

bool Cpuid::operator==(const Cpuid& other) const {
  if (version_ != 0 && version_ == other.version_) return true;
  return entries_.size() == other.entries_.size() &&
         (entries_.empty() || std::memcmp(entries_.data(), other.entries_.data(),
                                          entries_.size() * sizeof(CpuidEntry)) == 0);
}

Cpuid::Cpuid(std::span<const CpuidEntry> entries) {
  // Not Set() per entry: that is a linear search each, O(n^2) on every vCPU state restore.
  // Tables from the hypervisor are usually strictly ascending by (function, index) and so hold
  // no duplicates: a plain copy. Otherwise sort the slots once to find duplicates; each slot
  // keeps its first position and its last value, as repeated Set() calls would give.
  const auto key = [](const CpuidEntry& e) {
    return (static_cast<uint64_t>(e.function) << 32) | e.index;
  };
  bool ascending = true;
  for (size_t i = 1; i < entries.size() && ascending; ++i) {
    ascending = key(entries[i - 1]) < key(entries[i]);
  }
  Changed();
  if (ascending) {
    entries_.assign(entries.begin(), entries.end());
    return;
  }
  std::vector<std::pair<uint64_t, size_t>> slots;  // (slot key, position in `entries`)
  slots.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) slots.emplace_back(key(entries[i]), i);
  std::sort(slots.begin(), slots.end());
  // value_of[p] = position whose value lands at position p; npos for dropped duplicates.
  constexpr size_t kDropped = static_cast<size_t>(-1);
  std::vector<size_t> value_of(entries.size(), kDropped);
  for (size_t g = 0; g < slots.size();) {
    size_t end = g + 1;
    while (end < slots.size() && slots[end].first == slots[g].first) ++end;
    value_of[slots[g].second] = slots[end - 1].second;
    g = end;
  }
  entries_.reserve(entries.size());
  for (size_t p = 0; p < entries.size(); ++p) {
    if (value_of[p] != kDropped) entries_.push_back(entries[value_of[p]]);
  }
}

const CpuidEntry* Cpuid::Find(uint32_t function, uint32_t index) const {
  const CpuidEntry* any_index = nullptr;
  for (const CpuidEntry& e : entries_) {
    if (e.function != function) continue;
    if ((e.flags & kCpuidIndexSignificant) == 0) {
      if (any_index == nullptr) any_index = &e;
      continue;
    }
    if (e.index == index) return &e;
  }
  return any_index;
}

CpuidEntry* Cpuid::FindForChange(uint32_t function, uint32_t index) {
  return const_cast<CpuidEntry*>(std::as_const(*this).Find(function, index));
}

CpuidEntry* Cpuid::Find(uint32_t function, uint32_t index) {
  version_ = 0;  // the caller may change the entry through the pointer
  return FindForChange(function, index);
}

void Cpuid::Set(const CpuidEntry& entry) {
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const CpuidEntry& e) {
    return SameSlot(e, entry.function, entry.index);
  });
  if (it != entries_.end()) {
    *it = entry;
  } else {
    entries_.push_back(entry);
  }
  Changed();
}

bool Cpuid::Remove(uint32_t function, uint32_t index) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const CpuidEntry& e) { return SameSlot(e, function, index); });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  Changed();
  return true;
}

bool Cpuid::Has(const CpuidFeature& feature) const {
  const CpuidEntry* e = Find(feature.function, feature.index);
  return e != nullptr && ((Reg(*e, feature.reg) >> feature.bit) & 1u) != 0;
}

Status Cpuid::SetFeature(const CpuidFeature& feature, bool on) {
  CpuidEntry* e = FindForChange(feature.function, feature.index);
  if (e == nullptr) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "no CPUID leaf 0x%x.%u for feature %s", feature.function,
                  feature.index, feature.name);
    return Error::Make(ErrorCode::kNotFound, "Cpuid::SetFeature", buf);
  }
  uint32_t& r = Reg(*e, feature.reg);
  const uint32_t mask = 1u << feature.bit;
  r = on ? (r | mask) : (r & ~mask);
  Changed();
  return Ok();
}

void Cpuid::SetApicId(uint32_t apic_id) {
  for (CpuidEntry& e : entries_) {
    if (e.function == 1) e.ebx = (e.ebx & 0x00FFFFFFu) | ((apic_id & 0xFFu) << 24);
    if (e.function == 0xB || e.function == 0x1F) e.edx = apic_id;
  }
  Changed();
}

Status Cpuid::SetTopology(uint32_t apic_id, uint32_t vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > (1u << 16)) {
    return Error::Make(ErrorCode::kInvalidArgument, "Cpuid::SetTopology",
                       "vcpu_count " + std::to_string(vcpu_count) + " not in 1..65536");
  }
  uint32_t shift = 0;
  while ((1u << shift) < vcpu_count) ++shift;
  const uint32_t ids = 1u << shift;
  if (apic_id >= ids) {
    return Error::Make(ErrorCode::kInvalidArgument, "Cpuid::SetTopology",
                       "APIC ID " + std::to_string(apic_id) + " does not fit " +
                           std::to_string(vcpu_count) + " vCPUs");
  }
  Changed();  // whatever follows changes, nothing above did
  if (CpuidEntry* leaf1 = FindForChange(1, 0)) {
    leaf1->ebx = (leaf1->ebx & 0x0000FFFFu) | (std::min(ids, 255u) << 16) | ((apic_id & 0xFFu) << 24);
    leaf1->edx = vcpu_count > 1 ? (leaf1->edx | (1u << 28)) : (leaf1->edx & ~(1u << 28));
  }
  const CpuidEntry* leaf0 = std::as_const(*this).Find(0);
  const uint32_t max_leaf = leaf0 != nullptr ? leaf0->eax : 0;
  auto levels = [&](uint32_t function) {
    std::erase_if(entries_, [function](const CpuidEntry& e) { return e.function == function; });
    // Sub-leaf 0: the SMT level (one thread per core); 1: the core level; 2: the end.
    entries_.push_back({function, 0, kCpuidIndexSignificant, 0, 1, (1u << 8) | 0, apic_id});
    entries_.push_back({function, 1, kCpuidIndexSignificant, shift, vcpu_count, (2u << 8) | 1,
                        apic_id});
    entries_.push_back({function, 2, kCpuidIndexSignificant, 0, 0, 2, apic_id});
  };
  if (max_leaf >= 0xB) levels(0xB);
  if (max_leaf >= 0x1F && std::as_const(*this).Find(0x1F) != nullptr) levels(0x1F);
  return Ok();
}

std::optional<uint32_t> Cpuid::ApicId() const {
  if (const CpuidEntry* e = Find(0xB, 0)) return e->edx;
  if (const CpuidEntry* e = Find(1, 0)) return e->ebx >> 24;
  return std::nullopt;
}

}  // namespace virt
