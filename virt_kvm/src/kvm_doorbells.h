// KvmDoorbellOps: KVM_IOEVENTFD under the shared KernelDoorbells.
#pragma once

#include <memory>

#include "virt/doorbell_ops.h"
#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {

// One KVM_IOEVENTFD per call on the VM fd (kept open by the partition until after
// KernelDoorbells::Shutdown). The payload: datamatch, addr, len (0 for kDoorbellAnyLength),
// fd, flags PIO for port I/O, DATAMATCH with a data match, DEASSIGN to unregister (KVM finds the
// registration by the same fields).
class KvmDoorbellOps final : public DoorbellOps {
 public:
  KvmDoorbellOps(std::shared_ptr<KvmIoctl> ioctl, int vm_fd)
      : ioctl_(std::move(ioctl)), vm_fd_(vm_fd) {}

  Status Register(const DoorbellMatch& match, const Event& event) override;
  Status Unregister(const DoorbellMatch& match, const Event& event) override;

  // The kvm_ioeventfd for `match` (flags without DEASSIGN).
  static kvm_ioeventfd ToKvm(const DoorbellMatch& match, int event_fd);

 private:
  std::shared_ptr<KvmIoctl> ioctl_;
  int vm_fd_;
};

}  // namespace virt::kvm
