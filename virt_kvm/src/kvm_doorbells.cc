// KvmDoorbellOps: doorbells as KVM ioeventfds.
#include "kvm_doorbells.h"

namespace virt::kvm {

kvm_ioeventfd KvmDoorbellOps::ToKvm(const DoorbellMatch& match, int event_fd) {
  kvm_ioeventfd k{};
  k.addr = match.address;
  k.len = match.length == kDoorbellAnyLength ? 0 : match.length;
  k.fd = event_fd;
  if (match.space == DoorbellSpace::kPio) k.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (match.data) {
    k.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    k.datamatch = *match.data;
  }
  return k;
}

Status KvmDoorbellOps::Register(const DoorbellMatch& match, const Event& event) {
  return ioctl_->Ioeventfd(vm_fd_, ToKvm(match, event.native_handle()));
}

Status KvmDoorbellOps::Unregister(const DoorbellMatch& match, const Event& event) {
  kvm_ioeventfd k = ToKvm(match, event.native_handle());
  k.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  return ioctl_->Ioeventfd(vm_fd_, k);
}

}  // namespace virt::kvm
