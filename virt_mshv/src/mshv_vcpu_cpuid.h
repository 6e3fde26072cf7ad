// MshvVcpuCpuid: a vCPU's CPUID table on MSHV, answered from CPUID intercepts inside Run.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "mshv_cpuid_intercepts.h"
#include "mshv_message.h"
#include "virt/mshv/mshv_ioctl.h"
#include "virt/vcpu_cpuid.h"

namespace virt::mshv {

// MSHV has no per-VP "set CPUID" call. Until SetCpuid the guest sees what the hypervisor
// computes (it already reports each VP's own APIC ID). SetCpuid makes the partition intercept
// every leaf of the table (MshvCpuidIntercepts) and keeps the table here; Run then answers each
// CPUID intercept from it. Leaves the table lacks, on this or another vCPU whose table has them,
// get the hypervisor's default result that the intercept message carries, so on MSHV an absent
// leaf keeps the hypervisor's value (to hide a whole leaf, give it an all-zero entry). Each
// intercepted CPUID costs one exit to the vCPU thread and one HVCALL_SET_VP_REGISTERS.
//
// Not used: HVCALL_REGISTER_INTERCEPT_RESULT (0x0091, the cloud-hypervisor / QEMU route) lets
// the hypervisor answer without an exit, but a registration cannot be withdrawn (no rollback
// for a failed SetCpuid, no way to drop a leaf again) and the TLFS page gives only its layout,
// not how its per-register masks combine with the hypervisor's value. Lives inside MshvVcpu and
// shares its thread rules.
class MshvVcpuCpuid final : public VcpuCpuid {
 public:
  // `vp_fd` is the vCPU's fd (owned by MshvVcpu, which owns this object).
  MshvVcpuCpuid(std::shared_ptr<MshvIoctl> ioctl, int vp_fd, uint32_t vp_index,
                std::shared_ptr<MshvCpuidIntercepts> intercepts);

  // The table SetCpuid installed; before any, the hypervisor's own answers for this VP
  // (ReadVpCpuid through HVCALL_GET_VP_CPUID_VALUES on the vp fd).
  Result<Cpuid> GetCpuid() override;

  // kFailedPrecondition once the vCPU has entered MSHV_RUN_VP; kInvalidArgument for an entry
  // with flags other than 0 / kCpuidIndexSignificant. Otherwise installs the intercepts of the
  // table's leaves the partition lacks (HVCALL_INSTALL_INTERCEPT on the vp fd), then replaces
  // the table. On any error the vCPU keeps the table it had (extra intercepts change nothing).
  Status SetCpuid(const Cpuid& cpuid) override;

  // Answers one CPUID intercept: the table's entry for (function, index) if there is one, else
  // the hypervisor's default result, written with RIP + instruction length in a single
  // HVCALL_SET_VP_REGISTERS {RAX, RBX, RCX, RDX, RIP} (the upper halves of RAX..RDX cleared, as
  // CPUID does). On error nothing was written and the guest re-executes CPUID on the next Run.
  Status Complete(const CpuidIntercept& intercept);

  // Run calls this before it first enters MSHV_RUN_VP.
  void MarkEntered() { entered_ = true; }

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  int vp_fd_;
  uint32_t vp_index_;
  std::shared_ptr<MshvCpuidIntercepts> intercepts_;
  std::optional<Cpuid> table_;  // nullopt: the hypervisor answers (no SetCpuid yet)
  bool entered_ = false;
};

}  // namespace virt::mshv
