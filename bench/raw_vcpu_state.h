// raw_vcpu_state: the vcpu_state row's baseline: a whole vCPU saved and restored in plain ioctls.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "raw_kvm.h"

namespace virt_bench::raw {

// What the library's KVM backend saves, found the same way: the saveable MSRs
// (KVM_GET_MSR_INDEX_LIST and KVM_GET_MSR_FEATURE_INDEX_LIST, without the TSC, which is a part
// of its own), pruned to those this vCPU's KVM_GET_MSRS accepts; the XSAVE size from
// KVM_CAP_XSAVE2 on the VM (KVM_GET_XSAVE2), else 4 KiB (KVM_GET_XSAVE); whether the host has
// KVM_CAP_MP_STATE.
struct VcpuStateLayout {
  std::vector<uint32_t> msrs;
  uint32_t xsave2_size = 0;  // 0: KVM_GET_XSAVE
  bool mp_state = false;

  static Expected<VcpuStateLayout> Probe(const System& system, int vm_fd, int vcpu_fd);
};

// One vCPU's state in KVM's own structs, kept between a Save and a Restore. Save makes the
// library's calls in kVcpuRestoreOrder: KVM_GET_CPUID2, KVM_GET_MSRS, KVM_GET_SREGS,
// KVM_GET_REGS, KVM_GET_XCRS, KVM_GET_XSAVE(2), KVM_GET_DEBUGREGS, KVM_GET_MP_STATE,
// KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS, KVM_GET_MSRS (TSC). Restore the matching sets in the
// same order; the CPUID is read back and set only when it differs (the library's rule: KVM
// takes the same table again after KVM_RUN, nothing else), and the events go back with the
// library's valid-flags (NMI pending, SIPI vector, shadow, SMM). The buffers are allocated once.
class VcpuStateBuffers {
 public:
  explicit VcpuStateBuffers(const VcpuStateLayout& layout);
  ~VcpuStateBuffers();
  VcpuStateBuffers(const VcpuStateBuffers&) = delete;
  VcpuStateBuffers& operator=(const VcpuStateBuffers&) = delete;

  Expected<void> Save(int vcpu_fd);
  Expected<void> Restore(int vcpu_fd);

 private:
  struct Kvm;  // the <linux/kvm.h> structs, defined in the .cc
  const VcpuStateLayout& layout_;
  std::unique_ptr<Kvm> kvm_;
};

}  // namespace virt_bench::raw
