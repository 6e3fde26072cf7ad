// WhpCpuidPolicy: a WHP partition's CPUID: what WHP presents, each vCPU's default table, and the
// partition-wide list of CPUID leaves that exit so vCPU tables can be answered.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "virt/partition_cpuid.h"
#include "whp_partition.h"

namespace virt::whp {

// Leaves whose CPUID always exits, set before WHvSetupPartition: 0x15, so the TSC frequency is
// exact whatever the host's own list says (see TscFrequencyLeaf).
inline constexpr uint32_t kInitialCpuidExits[] = {0x15};

// WHP offers three CPUID controls: the partition's CpuidResultList (0x1004: whole leaves, no
// sub-leaf, the same for every VP) and CpuidResultList2 (0x100D: per VP and sub-leaf, with masks),
// both fixed once WHvSetupPartition has run, and CPUID exits for the leaves in CpuidExitList
// (0x1003), a list that may still change after setup (Windows 10 19H2 and later) and whose exits
// carry WHP's own answer. vCPU tables are set after the partition exists, so this backend answers
// them in exits (see WhpVcpuCpuid); this object owns the exit list they share. Thread-safe.
class WhpCpuidPolicy final : public PartitionCpuid {
 public:
  // `supported`: the table a VP presents, probed at partition creation (nullopt when the host
  // has no WHvGetVirtualProcessorCpuidOutput); `tsc_leaf`: leaf 0x15 as this backend answers it
  // (nullopt when the TSC frequency is unknown). The exit list starts as kInitialCpuidExits.
  WhpCpuidPolicy(std::shared_ptr<WhpPartitionHandle> partition, uint32_t vcpu_count,
                 std::optional<Cpuid> supported, std::optional<CpuidEntry> tsc_leaf);

  // The probed table with leaf 0x15 replaced by the TSC leaf and the APIC ID leaves of vCPU 0.
  // kUnavailable naming WHvGetVirtualProcessorCpuidOutput when the host could not be probed.
  Result<Cpuid> SupportedCpuid() override;
  // SupportedCpuid() with SetApicId(index). kInvalidArgument for index >= vcpu_count.
  Result<Cpuid> DefaultCpuid(uint32_t index) override;

  bool probed() const { return supported_.has_value(); }
  // The table vCPU `index` starts with: DefaultCpuid(index), or just the TSC leaf when not
  // probed.
  Cpuid DefaultFor(uint32_t index) const;

  // Makes CPUID of each function in `functions` exit too: one WHvSetPartitionProperty
  // (CpuidExitList, the sorted union of UINT32s) when anything is new, none otherwise. The list
  // only grows (a leaf no table changes any more exits and gets WHP's answer). On failure the
  // list is as it was.
  Status ExitOn(const std::set<uint32_t>& functions);
  std::vector<uint32_t> exit_list() const;

 private:
  std::shared_ptr<WhpPartitionHandle> partition_;
  const uint32_t vcpu_count_;
  const std::optional<Cpuid> supported_;  // with the TSC leaf, APIC ID 0
  const std::optional<CpuidEntry> tsc_leaf_;

  mutable std::mutex mu_;
  std::set<uint32_t> exits_;  // guarded by mu_
};

}  // namespace virt::whp
