// MshvHypervisor: opening /dev/mshv, probing and partition creation.
#include "virt/mshv/mshv_hypervisor.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "mshv_fd.h"
#include "mshv_partition.h"

namespace virt::mshv {

Result<std::unique_ptr<MshvHypervisor>> MshvHypervisor::Create(std::shared_ptr<MshvIoctl> ioctl,
                                                               MshvOptions options,
                                                               std::string device) {
  auto opened = ioctl->Open(device.c_str());
  if (!opened) return opened.error();
  return std::unique_ptr<MshvHypervisor>(new MshvHypervisor(std::move(ioctl), *opened, options));
}

Availability MshvHypervisor::Probe(std::shared_ptr<MshvIoctl> ioctl, std::string device) {
  auto opened = Create(std::move(ioctl), {}, device);
  if (opened) return {};
  const Error& e = opened.error();
  if (std::strcmp(e.operation, "open") == 0 && e.domain == NativeDomain::kErrno) {
    const int err = static_cast<int>(e.native_code);
    std::string reason = device + ": " + std::strerror(err);
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return {Unavailability::kDeviceMissing, std::move(reason)};
    }
    if (err == EACCES || err == EPERM) return {Unavailability::kPermissionDenied, reason};
    return {Unavailability::kOther, std::move(reason)};
  }
  return {Unavailability::kOther, e.Message()};
}

MshvHypervisor::MshvHypervisor(std::shared_ptr<MshvIoctl> ioctl, int mshv_fd, MshvOptions options)
    : ioctl_(std::move(ioctl)), mshv_fd_(mshv_fd), options_(options) {}

MshvHypervisor::~MshvHypervisor() { (void)ioctl_->Close(mshv_fd_); }

Result<std::unique_ptr<Partition>> MshvHypervisor::CreatePartition(const PartitionConfig& config) {
  if (config.vcpu_count == 0) {
    return Error::Make(ErrorCode::kInvalidArgument, "MshvHypervisor::CreatePartition",
                       "vcpu_count is 0");
  }
  if (config.pit && !config.irqchip) {
    return Error::Make(ErrorCode::kInvalidArgument, "MshvHypervisor::CreatePartition",
                       "PartitionConfig::pit needs PartitionConfig::irqchip");
  }
  if (config.pit) {
    // Checked before MSHV_CREATE_PARTITION, so nothing is created to be cleaned up.
    return Error::Make(ErrorCode::kUnavailable, "MshvHypervisor::CreatePartition",
                       "MSHV has no in-kernel i8254 PIT (PartitionConfig::pit); emulate it in "
                       "the VMM on ports 0x40-0x43");
  }
  mshv_create_partition args{};
  if (config.irqchip) {
    args.pt_flags |= uint64_t{1} << MSHV_PT_BIT_LAPIC;
    if (options_.x2apic) args.pt_flags |= uint64_t{1} << MSHV_PT_BIT_X2APIC;
  }
  args.pt_isolation = MSHV_PT_ISOLATION_NONE;
  auto fd = ioctl_->CreatePartition(mshv_fd_, args);
  if (!fd) return fd.error();
  MshvFd partition(ioctl_, *fd);
  if (Status s = ioctl_->InitializePartition(partition.get()); !s) return s.error();
  return MshvPartition::Create(ioctl_, std::move(partition), config);
}

BackendInfo MshvBackendInfo() {
  return BackendInfo{
      "mshv",
      [] { return MshvHypervisor::Probe(MakeSystemMshvIoctl()); },
      []() -> Result<std::unique_ptr<Hypervisor>> {
        auto h = MshvHypervisor::Create(MakeSystemMshvIoctl());
        if (!h) return h.error();
        return std::unique_ptr<Hypervisor>(std::move(*h));
      },
  };
}

}  // namespace virt::mshv
