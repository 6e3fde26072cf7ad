// WhpVcpuCpuid: per-vCPU CPUID tables, the exit list they need, and the answer to a CPUID exit.
#include "whp_vcpu_cpuid.h"

#include <string>
#include <utility>

namespace virt::whp {
namespace {

constexpr uint32_t kTscLeaf = 0x15;

bool SameRegisters(const CpuidEntry& a, const CpuidEntry& b) {
  return a.eax == b.eax && a.ebx == b.ebx && a.ecx == b.ecx && a.edx == b.edx;
}

uint32_t Merge(uint32_t live, uint32_t table, uint32_t baseline) {
  const uint32_t changed = table ^ baseline;
  return (live & ~changed) | (table & changed);
}

CpuidEntry Registers(uint32_t function, uint32_t index, const CpuidEntry& from) {
  return {.function = function, .index = index, .flags = 0,
          .eax = from.eax, .ebx = from.ebx, .ecx = from.ecx, .edx = from.edx};
}

}  // namespace

CpuidEntry AnswerCpuid(const Cpuid& table, const Cpuid& baseline, uint32_t function,
                       uint32_t index, const CpuidEntry& defaults) {
  const CpuidEntry* t = table.Find(function, index);
  const CpuidEntry* b = baseline.Find(function, index);
  if (t != nullptr && (function == kTscLeaf || b == nullptr)) {
    return Registers(function, index, *t);
  }
  if (t != nullptr) {
    return {.function = function, .index = index, .flags = 0,
            .eax = Merge(defaults.eax, t->eax, b->eax),
            .ebx = Merge(defaults.ebx, t->ebx, b->ebx),
            .ecx = Merge(defaults.ecx, t->ecx, b->ecx),
            .edx = Merge(defaults.edx, t->edx, b->edx)};
  }
  if (b != nullptr) return {.function = function, .index = index};
  return Registers(function, index, defaults);
}

std::set<uint32_t> DifferingFunctions(const Cpuid& table, const Cpuid& baseline) {
  std::set<uint32_t> out;
  for (const CpuidEntry& t : table.entries()) {
    const CpuidEntry* b = baseline.Find(t.function, t.index);
    if (b == nullptr || !SameRegisters(t, *b)) out.insert(t.function);
  }
  for (const CpuidEntry& b : baseline.entries()) {
    const CpuidEntry* t = table.Find(b.function, b.index);
    if (t == nullptr || !SameRegisters(*t, b)) out.insert(b.function);
  }
  return out;
}

WhpVcpuCpuid::WhpVcpuCpuid(std::shared_ptr<WhpCpuidPolicy> policy, uint32_t index)
    : policy_(std::move(policy)),
      index_(index),
      baseline_(policy_->DefaultFor(index)),
      table_(baseline_) {}

Result<Cpuid> WhpVcpuCpuid::GetCpuid() { return table_; }

Status WhpVcpuCpuid::SetCpuid(const Cpuid& cpuid) {
  constexpr const char* kOp = "WhpVcpu::SetCpuid";
  if (ran_) {
    return Error::Make(ErrorCode::kFailedPrecondition, kOp,
                       "vCPU " + std::to_string(index_) + " has already run");
  }
  if (auto apic_id = cpuid.ApicId()) {
    const uint32_t expected = cpuid.Find(0xB) != nullptr ? index_ : (index_ & 0xFF);
    if (*apic_id != expected) {
      return Error::Make(ErrorCode::kInvalidArgument, kOp,
                         "APIC ID " + std::to_string(*apic_id) + " is not vCPU index " +
                             std::to_string(index_) +
                             ": WHP's local APIC ID is the VP index and cannot follow CPUID");
    }
  }
  if (Status s = policy_->ExitOn(DifferingFunctions(cpuid, baseline_)); !s) return s;
  table_ = cpuid;
  return Ok();
}

CpuidEntry WhpVcpuCpuid::Answer(uint32_t function, uint32_t index,
                                const CpuidEntry& defaults) const {
  return AnswerCpuid(table_, baseline_, function, index, defaults);
}

}  // namespace virt::whp
