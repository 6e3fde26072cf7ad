// MshvPartitionCpuid: the partition's CPUID tables from the first vCPU, read once.
#include "mshv_partition_cpuid.h"

#include <string>
#include <utility>

#include "mshv_cpuid.h"

namespace virt::mshv {

MshvPartitionCpuid::MshvPartitionCpuid(std::shared_ptr<MshvIoctl> ioctl, int partition_fd,
                                       uint32_t vcpu_count,
                                       std::function<std::optional<uint32_t>()> first_vp)
    : ioctl_(std::move(ioctl)),
      partition_fd_(partition_fd),
      vcpu_count_(vcpu_count),
      first_vp_(std::move(first_vp)) {}

Result<Cpuid> MshvPartitionCpuid::SupportedCpuid() {
  std::lock_guard lock(mu_);
  if (supported_) return *supported_;
  const std::optional<uint32_t> vp = first_vp_();
  if (!vp) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvPartitionCpuid::SupportedCpuid",
                       "MSHV computes CPUID per VP (HVCALL_GET_VP_CPUID_VALUES): create a vCPU "
                       "first");
  }
  auto read = ReadVpCpuid(*ioctl_, partition_fd_, *vp);
  if (!read) return read.error();
  read->SetApicId(0);
  supported_ = std::move(*read);
  return *supported_;
}

Result<Cpuid> MshvPartitionCpuid::DefaultCpuid(uint32_t index) {
  if (index >= vcpu_count_) {
    return Error::Make(ErrorCode::kInvalidArgument, "MshvPartitionCpuid::DefaultCpuid",
                       "index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(vcpu_count_));
  }
  auto cpuid = SupportedCpuid();
  if (!cpuid) return cpuid.error();
  cpuid->SetApicId(index);
  return cpuid;
}

}  // namespace virt::mshv
