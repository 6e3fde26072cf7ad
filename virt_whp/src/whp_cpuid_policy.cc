// WhpCpuidPolicy: supported and default CPUID tables, and the shared CPUID exit list.
#include "whp_cpuid_policy.h"

#include <string>
#include <utility>

namespace virt::whp {
namespace {

std::optional<Cpuid> WithTscLeaf(std::optional<Cpuid> table,
                                 const std::optional<CpuidEntry>& tsc_leaf) {
  if (table && tsc_leaf) table->Set(*tsc_leaf);
  if (table) table->SetApicId(0);
  return table;
}

}  // namespace

WhpCpuidPolicy::WhpCpuidPolicy(std::shared_ptr<WhpPartitionHandle> partition,
                               uint32_t vcpu_count, std::optional<Cpuid> supported,
                               std::optional<CpuidEntry> tsc_leaf)
    : partition_(std::move(partition)),
      vcpu_count_(vcpu_count),
      supported_(WithTscLeaf(std::move(supported), tsc_leaf)),
      tsc_leaf_(tsc_leaf),
      exits_(std::begin(kInitialCpuidExits), std::end(kInitialCpuidExits)) {}

Result<Cpuid> WhpCpuidPolicy::SupportedCpuid() {
  if (!supported_) {
    return Error::Make(ErrorCode::kUnavailable, "WhpPartition::SupportedCpuid",
                       "WinHvPlatform.dll has no WHvGetVirtualProcessorCpuidOutput (Windows 10 "
                       "20H2 or later), so what a VP presents cannot be read");
  }
  return *supported_;
}

Result<Cpuid> WhpCpuidPolicy::DefaultCpuid(uint32_t index) {
  if (index >= vcpu_count_) {
    return Error::Make(ErrorCode::kInvalidArgument, "WhpPartition::DefaultCpuid",
                       "vCPU index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(vcpu_count_));
  }
  auto supported = SupportedCpuid();
  if (!supported) return supported.error();
  supported->SetApicId(index);
  return supported;
}

Cpuid WhpCpuidPolicy::DefaultFor(uint32_t index) const {
  if (supported_) {
    Cpuid table = *supported_;
    table.SetApicId(index);
    return table;
  }
  Cpuid table;
  if (tsc_leaf_) table.Set(*tsc_leaf_);
  return table;
}

Status WhpCpuidPolicy::ExitOn(const std::set<uint32_t>& functions) {
  std::lock_guard lock(mu_);
  std::set<uint32_t> wanted = exits_;
  wanted.insert(functions.begin(), functions.end());
  if (wanted == exits_) return Ok();
  const std::vector<UINT32> list(wanted.begin(), wanted.end());
  if (Status s = partition_->api().SetPartitionProperty(
          partition_->get(), WHvPartitionPropertyCodeCpuidExitList, list.data(),
          static_cast<uint32_t>(list.size() * sizeof(UINT32)));
      !s) {
    return s;
  }
  exits_ = std::move(wanted);
  return Ok();
}

std::vector<uint32_t> WhpCpuidPolicy::exit_list() const {
  std::lock_guard lock(mu_);
  return {exits_.begin(), exits_.end()};
}

}  // namespace virt::whp
