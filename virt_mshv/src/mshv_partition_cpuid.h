// MshvPartitionCpuid: the CPUID an MSHV partition's guests see, read from one of its VPs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "virt/mshv/mshv_ioctl.h"
#include "virt/partition_cpuid.h"

namespace virt::mshv {

// MSHV has no partition- or system-wide "supported CPUID" query: the hypervisor computes CPUID
// per existing VP (HVCALL_GET_VP_CPUID_VALUES, see ReadVpCpuid). So these calls need one vCPU
// created first, and read the lowest-index one through the partition fd; before any vCPU exists
// they fail with kFailedPrecondition. Thread-safe.
class MshvPartitionCpuid final : public PartitionCpuid {
 public:
  // `first_vp` returns the lowest vCPU index created so far, or nullopt (called with this
  // object's lock held: it must not call back in). `partition_fd` stays open as long as this
  // object (both belong to MshvPartition).
  MshvPartitionCpuid(std::shared_ptr<MshvIoctl> ioctl, int partition_fd, uint32_t vcpu_count,
                     std::function<std::optional<uint32_t>()> first_vp);

  // ReadVpCpuid of the first vCPU with the APIC ID fields set to 0 (as KVM_GET_SUPPORTED_CPUID
  // reports them). Read once; later calls return the same table.
  Result<Cpuid> SupportedCpuid() override;

  // SupportedCpuid() with SetApicId(index). kInvalidArgument for index >= vcpu_count.
  Result<Cpuid> DefaultCpuid(uint32_t index) override;

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  int partition_fd_;
  uint32_t vcpu_count_;
  std::function<std::optional<uint32_t>()> first_vp_;

  std::mutex mu_;
  std::optional<Cpuid> supported_;  // guarded by mu_
};

}  // namespace virt::mshv
