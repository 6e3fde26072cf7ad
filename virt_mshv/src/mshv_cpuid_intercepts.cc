// MshvCpuidIntercepts: HVCALL_INSTALL_INTERCEPT once per CPUID leaf and partition.
#include "mshv_cpuid_intercepts.h"

#include <cstdio>

#include "mshv_hvcall.h"

namespace virt::mshv {

Status MshvCpuidIntercepts::Install(MshvIoctl& ioctl, int fd, std::span<const uint32_t> leaves) {
  std::lock_guard lock(mu_);
  for (uint32_t leaf : leaves) {
    if (installed_.count(leaf) != 0) continue;
    if (Status s = InstallCpuidIntercept(ioctl, fd, leaf); !s) {
      Error e = s.error();
      char buf[48];
      std::snprintf(buf, sizeof buf, "CPUID leaf 0x%x: ", leaf);
      e.detail = buf + e.detail;
      return e;
    }
    installed_.insert(leaf);
  }
  return Ok();
}

bool MshvCpuidIntercepts::Installed(uint32_t leaf) const {
  std::lock_guard lock(mu_);
  return installed_.count(leaf) != 0;
}

}  // namespace virt::mshv
