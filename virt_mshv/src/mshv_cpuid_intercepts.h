// MshvCpuidIntercepts: the CPUID leaves a partition intercepts, shared by the partition's vCPUs.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <span>

#include "virt/mshv/mshv_ioctl.h"
#include "virt/result.h"

namespace virt::mshv {

// A CPUID intercept (HVCALL_INSTALL_INTERCEPT, HV_INTERCEPT_TYPE_X64_CPUID) is partition-wide:
// once a leaf is intercepted, CPUID of that leaf on every VP stops with HVMSG_X64_CPUID_INTERCEPT
// and the vCPU answers it from its own table, or with the hypervisor's default result carried by
// the message when its table lacks the leaf. An intercept nobody has a table entry for therefore
// changes nothing the guest sees, which is what makes a partly failed Install harmless. The set
// outlives the partition object (vCPUs may), so vCPUs hold it by shared_ptr. Thread-safe.
class MshvCpuidIntercepts {
 public:
  // Installs an intercept for each leaf not intercepted yet, one HVCALL_INSTALL_INTERCEPT each
  // on `fd` (any fd of the partition: the kernel fills in the partition id). Stops at the first
  // failure, naming its leaf; the leaves installed before it stay installed and recorded.
  Status Install(MshvIoctl& ioctl, int fd, std::span<const uint32_t> leaves);

  bool Installed(uint32_t leaf) const;

 private:
  mutable std::mutex mu_;
  std::set<uint32_t> installed_;  // guarded by mu_; held across the hypercalls
};

}  // namespace virt::mshv
