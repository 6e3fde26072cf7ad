// MshvDoorbellOps: MSHV_IOEVENTFD under the shared KernelDoorbells.
#pragma once

#include <memory>

#include "virt/doorbell_ops.h"
#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

// One MSHV_IOEVENTFD per call on the partition fd (kept open by the partition until after
// KernelDoorbells::Shutdown; closing it releases every ioeventfd in the kernel). The payload:
// datamatch (0 without a data match), addr, len (0 for kDoorbellAnyLength, which the kernel
// turns into HV_DOORBELL_FLAG_TRIGGER_SIZE_ANY), fd, flags DATAMATCH with a data match, PIO
// for port I/O, DEASSIGN to unregister, rsvd zero. The kernel finds the registration to
// deassign by eventfd, addr, len, DATAMATCH and (with it) datamatch, so Unregister sends the
// fields Register sent. Upstream mshv_eventfd.c has no port I/O doorbells: it answers
// EOPNOTSUPP for the PIO flag, which Register reports as kUnavailable (the VMM then uses
// UserModeDoorbells for ports). An EEXIST from the kernel can only come from a registration
// whose deassign failed earlier (KernelDoorbells refuses every collision the kernel would
// see); it stays in the kernel until the partition fd closes.
class MshvDoorbellOps final : public DoorbellOps {
 public:
  MshvDoorbellOps(std::shared_ptr<MshvIoctl> ioctl, int partition_fd)
      : ioctl_(std::move(ioctl)), partition_fd_(partition_fd) {}

  // MSHV_IOEVENTFD assign.
  Status Register(const DoorbellMatch& match, const Event& event) override;
  // MSHV_IOEVENTFD with DEASSIGN and the fields Register sent.
  Status Unregister(const DoorbellMatch& match, const Event& event) override;

  // The mshv_user_ioeventfd for `match` (flags without DEASSIGN).
  static mshv_user_ioeventfd ToMshv(const DoorbellMatch& match, int event_fd);

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  int partition_fd_;
};

}  // namespace virt::mshv
