// KvmHypervisor: the KVM backend's entry point (/dev/kvm), probe and registry entry.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "virt/cpuid.h"
#include "virt/hypervisor.h"
#include "virt/kvm/kvm_ioctl.h"
#include "virt/registry.h"

namespace virt::kvm {

inline constexpr const char* kDefaultDevice = "/dev/kvm";

// What the host KVM offers, read once when the hypervisor is opened.
struct KvmHostCaps {
  int vcpu_mmap_size = 0;
  int max_memslots = 0;         // KVM_CAP_NR_MEMSLOTS
  int max_vcpus = 0;            // KVM_CAP_MAX_VCPUS
  int max_irq_routes = 0;       // KVM_CAP_IRQ_ROUTING (KVM_MAX_IRQ_ROUTES)
  bool identity_map_addr = false;  // KVM_CAP_SET_IDENTITY_MAP_ADDR
  bool pit2 = false;               // KVM_CAP_PIT2 (PartitionConfig::pit)
  bool irqfd_resample = false;     // KVM_CAP_IRQFD_RESAMPLE (LineTrigger::kLevelResample)
  bool mp_state = false;           // KVM_CAP_MP_STATE (Vcpu::mp_state())
  bool ioeventfd = false;          // KVM_CAP_IOEVENTFD (Partition::doorbells())
  bool ioeventfd_any_length = false;  // KVM_CAP_IOEVENTFD_ANY_LENGTH (kDoorbellAnyLength)
  bool manual_dirty_log = false;   // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (KVM_CLEAR_DIRTY_LOG)
};

class KvmHypervisor final : public Hypervisor {
 public:
  // Opens `device`, checks KVM_GET_API_VERSION == 12 and the capabilities the backend needs
  // (user memory, irqchip, IRQ routing, irqfd, KVM_SIGNAL_MSI, immediate_exit, CPUID2), and
  // reads KVM_GET_SUPPORTED_CPUID, KVM_GET_MSR_INDEX_LIST and KVM_GET_MSR_FEATURE_INDEX_LIST.
  // Every fd opened is closed on failure.
  static Result<std::unique_ptr<KvmHypervisor>> Create(std::shared_ptr<KvmIoctl> ioctl,
                                                       std::string device = kDefaultDevice);

  // Create + close, reporting why KVM is unusable (device missing, permission denied, API).
  static Availability Probe(std::shared_ptr<KvmIoctl> ioctl, std::string device = kDefaultDevice);

  ~KvmHypervisor() override;

  std::string_view name() const override { return "kvm"; }

  // KVM_CREATE_VM, KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR, KVM_CREATE_IRQCHIP (when
  // config.irqchip), KVM_CREATE_PIT2 {flags KVM_PIT_SPEAKER_DUMMY} (when config.pit),
  // KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) on the VM fd (the XSAVE area size), KVM_ENABLE_CAP
  // (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, manual protect on) when the host has it. The VM fd
  // is closed again on any failure. kInvalidArgument for vcpu_count outside 1..max_vcpus or pit
  // without irqchip; kUnavailable for pit when the host lacks KVM_CAP_PIT2.
  Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig& config) override;

  const KvmHostCaps& caps() const { return caps_; }
  // What KVM_GET_SUPPORTED_CPUID said when the hypervisor was opened.
  const Cpuid& supported_cpuid() const { return supported_cpuid_; }
  // The MSRs a vCPU state save reads: KVM_GET_MSR_INDEX_LIST, then the feature MSRs, once
  // each, without the TSC (MSR 0x10: its own part, restored last).
  const std::vector<uint32_t>& saveable_msrs() const { return *saveable_msrs_; }

 private:
  KvmHypervisor(std::shared_ptr<KvmIoctl> ioctl, int kvm_fd, KvmHostCaps caps, Cpuid cpuid,
                std::vector<uint32_t> saveable_msrs);

  std::shared_ptr<KvmIoctl> ioctl_;
  int kvm_fd_;
  KvmHostCaps caps_;
  Cpuid supported_cpuid_;
  std::shared_ptr<const std::vector<uint32_t>> saveable_msrs_;  // shared with partitions
};

// The registry entry for KVM using the real ioctl layer.
BackendInfo KvmBackendInfo();

}  // namespace virt::kvm
