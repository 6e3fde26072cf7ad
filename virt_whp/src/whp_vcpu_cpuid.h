// WhpVcpuCpuid: one WHP vCPU's CPUID table, answered in CPUID exits inside Run.
#pragma once

#include <cstdint>
#include <memory>
#include <set>

#include "virt/vcpu_cpuid.h"
#include "whp_cpuid_policy.h"

namespace virt::whp {

// The vCPU keeps two tables: the baseline (what WHP presents to it unless told otherwise, i.e.
// WhpCpuidPolicy::DefaultFor) and the table the VMM set. Every function where they differ is in
// the partition's CpuidExitList, and each CPUID exit is answered by AnswerCpuid. Run-thread only.
class WhpVcpuCpuid final : public VcpuCpuid {
 public:
  WhpVcpuCpuid(std::shared_ptr<WhpCpuidPolicy> policy, uint32_t index);

  // The table the VMM set, or the default.
  Result<Cpuid> GetCpuid() override;
  // Only before the first Run (kFailedPrecondition afterwards). kInvalidArgument, before any
  // call, when the table's APIC ID (leaf 0xB EDX, else leaf 1 EBX[31:24]) is not this vCPU's
  // index: WHP's local APIC ID is the VP index and cannot follow CPUID. Then
  // WhpCpuidPolicy::ExitOn(the functions that differ from the baseline); on its failure the
  // vCPU keeps its table.
  Status SetCpuid(const Cpuid& cpuid) override;

  // What the guest reads for CPUID(function, index) given WHP's own answer (AnswerCpuid).
  CpuidEntry Answer(uint32_t function, uint32_t index, const CpuidEntry& defaults) const;
  // Called by Run before the vCPU first enters the guest.
  void MarkRan() { ran_ = true; }

 private:
  std::shared_ptr<WhpCpuidPolicy> policy_;
  uint32_t index_;
  Cpuid baseline_;
  Cpuid table_;
  bool ran_ = false;
};

// The answer to CPUID(function, index) from a vCPU whose VMM table is `table`, whose baseline is
// `baseline`, and for which WHP answered `defaults` (the exit's DefaultResult registers):
// - leaf 0x15 present in `table`: the table's entry (the TSC frequency stays exact);
// - present in both: WHP's answer with exactly the bits where table and baseline differ taken
//   from the table, so bits WHP computes at run time (the APIC ID, OSXSAVE, XSAVE sizes) stay
//   live unless the VMM changed them;
// - only in `table`: the table's entry; only in `baseline` (the VMM removed it): zeros;
// - in neither: WHP's answer.
CpuidEntry AnswerCpuid(const Cpuid& table, const Cpuid& baseline, uint32_t function,
                       uint32_t index, const CpuidEntry& defaults);

// The functions for which some CPUID(function, index) answer of `table` differs from
// `baseline`'s (an entry changed, added or removed).
std::set<uint32_t> DifferingFunctions(const Cpuid& table, const Cpuid& baseline);

}  // namespace virt::whp
