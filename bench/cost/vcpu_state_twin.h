// VcpuStateTwin: the raw twin of one vCPU state save + restore for virt-cost.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "virt/kvm/kvm_ioctl.h"

namespace virt::cost {

// Makes the seam calls KvmVcpu's SaveState() + RestoreState(kStopOnFailure) make, in the same
// order, into buffers allocated once, the way a hand-written VMM keeps them: KVM_GET_CPUID2,
// _MSRS (the saveable list), _SREGS, _REGS, _XCRS, _XSAVE, _DEBUGREGS, _MP_STATE, _LAPIC,
// _VCPU_EVENTS, _MSRS (TSC); then KVM_GET_CPUID2 again (KVM_SET_CPUID2 only if the table
// differs from the saved one) and the ten sets. Exits the program on any failure.
class VcpuStateTwin {
 public:
  VcpuStateTwin(kvm::KvmIoctl& seam, int vcpu_fd, std::vector<uint32_t> msrs);
  ~VcpuStateTwin();
  void SaveRestore();

 private:
  struct Buffers;
  kvm::KvmIoctl& seam_;
  int fd_;
  std::vector<uint32_t> msrs_;
  std::unique_ptr<Buffers> b_;
};

}  // namespace virt::cost
