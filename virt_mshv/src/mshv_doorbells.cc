// MshvDoorbellOps: doorbells as MSHV ioeventfds (hypervisor doorbell ports behind the kernel).
#include "mshv_doorbells.h"

#include <cerrno>

namespace virt::mshv {

mshv_user_ioeventfd MshvDoorbellOps::ToMshv(const DoorbellMatch& match, int event_fd) {
  mshv_user_ioeventfd a{};
  a.addr = match.address;
  a.len = match.length == kDoorbellAnyLength ? 0 : match.length;
  a.fd = event_fd;
  if (match.space == DoorbellSpace::kPio) a.flags |= 1u << MSHV_IOEVENTFD_BIT_PIO;
  if (match.data) {
    a.flags |= 1u << MSHV_IOEVENTFD_BIT_DATAMATCH;
    a.datamatch = *match.data;
  }
  return a;
}

Status MshvDoorbellOps::Register(const DoorbellMatch& match, const Event& event) {
  Status s = ioctl_->Ioeventfd(partition_fd_, ToMshv(match, event.native_handle()));
  if (!s && match.space == DoorbellSpace::kPio && s.error().domain == NativeDomain::kErrno &&
      s.error().native_code == EOPNOTSUPP) {
    Error e = s.error();
    e.code = ErrorCode::kUnavailable;
    e.detail = Describe(match) +
               ": this kernel has no port I/O ioeventfds (use UserModeDoorbells for ports)";
    return e;
  }
  return s;
}

Status MshvDoorbellOps::Unregister(const DoorbellMatch& match, const Event& event) {
  mshv_user_ioeventfd a = ToMshv(match, event.native_handle());
  a.flags |= 1u << MSHV_IOEVENTFD_BIT_DEASSIGN;
  return ioctl_->Ioeventfd(partition_fd_, a);
}

}  // namespace virt::mshv
