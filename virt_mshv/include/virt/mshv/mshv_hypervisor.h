// MshvHypervisor: the MSHV backend's entry point (/dev/mshv), probe and registry entry.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "virt/hypervisor.h"
#include "virt/mshv/mshv_ioctl.h"
#include "virt/registry.h"

namespace virt::mshv {

inline constexpr const char* kDefaultDevice = "/dev/mshv";

// Choices made when partitions are created.
struct MshvOptions {
  // Also sets MSHV_PT_BIT_X2APIC (with PartitionConfig::irqchip), so the guest may switch its
  // LAPIC to x2APIC mode.
  bool x2apic = false;
};

class MshvHypervisor final : public Hypervisor {
 public:
  // Opens `device` (open(2) through the ioctl layer). MSHV has no API-version ioctl: a kernel
  // that exposes /dev/mshv speaks the upstream ABI in mshv_abi.h.
  static Result<std::unique_ptr<MshvHypervisor>> Create(std::shared_ptr<MshvIoctl> ioctl,
                                                        MshvOptions options = {},
                                                        std::string device = kDefaultDevice);

  // Create + close, reporting why MSHV is unusable (device missing, permission denied, other).
  static Availability Probe(std::shared_ptr<MshvIoctl> ioctl, std::string device = kDefaultDevice);

  ~MshvHypervisor() override;

  std::string_view name() const override { return "mshv"; }

  // MSHV_CREATE_PARTITION (pt_flags: LAPIC when config.irqchip, X2APIC when also
  // options.x2apic; isolation NONE), then MSHV_INITIALIZE_PARTITION. The partition fd is closed
  // again on any failure. kInvalidArgument when vcpu_count is 0 or pit is asked without
  // irqchip; kUnavailable (naming the PIT) for pit: MSHV has no in-kernel PIT. Both are
  // refused before any ioctl.
  Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig& config) override;

 private:
  MshvHypervisor(std::shared_ptr<MshvIoctl> ioctl, int mshv_fd, MshvOptions options);

  std::shared_ptr<MshvIoctl> ioctl_;
  int mshv_fd_;
  MshvOptions options_;
};

// The registry entry for MSHV using the real ioctl layer.
BackendInfo MshvBackendInfo();

}  // namespace virt::mshv
