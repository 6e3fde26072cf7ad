// KvmHypervisor: opening /dev/kvm, capability checks, probing and partition creation.
#include "virt/kvm/kvm_hypervisor.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "kvm_cpuid.h"
#include "kvm_fd.h"
#include "kvm_partition.h"

namespace virt::kvm {
namespace {

constexpr uint64_t kIdentityMapAddress = 0xfeffc000;  // one page, as QEMU uses
constexpr uint64_t kTssAddress = 0xfeffd000;          // three pages after it

struct RequiredCap {
  int cap;
  const char* name;
};
constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
};

Result<Cpuid> ReadSupportedCpuid(KvmIoctl& ioctl, int kvm_fd) {
  for (uint32_t nent = 128; nent <= 4096; nent *= 2) {
    std::vector<uint8_t> buf = NewCpuidBuffer(nent);
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
    Status got = ioctl.GetSupportedCpuid(kvm_fd, cpuid);
    if (got) return FromKvmCpuid(*cpuid);
    if (got.error().native_code != E2BIG) return got.error();
  }
  return Error::Make(ErrorCode::kNative, "KVM_GET_SUPPORTED_CPUID", "more than 4096 entries");
}

// One KVM_GET_MSR_*INDEX_LIST: asked with room for 256, again with the count KVM gives on E2BIG.
Result<std::vector<uint32_t>> ReadMsrList(KvmIoctl& ioctl, int kvm_fd, bool features) {
  uint32_t capacity = 256;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::vector<uint32_t> buf(1 + capacity);
    auto* list = reinterpret_cast<kvm_msr_list*>(buf.data());
    list->nmsrs = capacity;
    Status got = features ? ioctl.GetMsrFeatureIndexList(kvm_fd, list)
                          : ioctl.GetMsrIndexList(kvm_fd, list);
    if (got) return std::vector<uint32_t>(list->indices, list->indices + list->nmsrs);
    if (got.error().native_code != E2BIG || list->nmsrs <= capacity) return got.error();
    capacity = list->nmsrs;
  }
  return Error::Make(ErrorCode::kNative, features ? "KVM_GET_MSR_FEATURE_INDEX_LIST"
                                                  : "KVM_GET_MSR_INDEX_LIST",
                     "the list grew between two calls");
}

}  // namespace

Result<std::unique_ptr<KvmHypervisor>> KvmHypervisor::Create(std::shared_ptr<KvmIoctl> ioctl,
                                                             std::string device) {
  auto opened = ioctl->Open(device.c_str());
  if (!opened) return opened.error();
  KvmFd kvm(ioctl, *opened);

  auto version = ioctl->GetApiVersion(kvm.get());
  if (!version) return version.error();
  if (*version != KVM_API_VERSION) {
    return Error::Make(ErrorCode::kUnavailable, "KVM_GET_API_VERSION",
                       "API version " + std::to_string(*version) + ", need " +
                           std::to_string(KVM_API_VERSION));
  }
  for (const RequiredCap& rc : kRequiredCaps) {
    auto has = ioctl->CheckExtension(kvm.get(), rc.cap);
    if (!has) return has.error();
    if (*has <= 0) {
      return Error::Make(ErrorCode::kUnavailable, "KVM_CHECK_EXTENSION",
                         std::string("missing ") + rc.name);
    }
  }
  KvmHostCaps caps;
  auto routes = ioctl->CheckExtension(kvm.get(), KVM_CAP_IRQ_ROUTING);
  auto memslots = ioctl->CheckExtension(kvm.get(), KVM_CAP_NR_MEMSLOTS);
  auto max_vcpus = ioctl->CheckExtension(kvm.get(), KVM_CAP_MAX_VCPUS);
  auto idmap = ioctl->CheckExtension(kvm.get(), KVM_CAP_SET_IDENTITY_MAP_ADDR);
  auto pit2 = ioctl->CheckExtension(kvm.get(), KVM_CAP_PIT2);
  auto resample = ioctl->CheckExtension(kvm.get(), KVM_CAP_IRQFD_RESAMPLE);
  auto mp_state = ioctl->CheckExtension(kvm.get(), KVM_CAP_MP_STATE);
  auto ioeventfd = ioctl->CheckExtension(kvm.get(), KVM_CAP_IOEVENTFD);
  auto any_length = ioctl->CheckExtension(kvm.get(), KVM_CAP_IOEVENTFD_ANY_LENGTH);
  auto manual_dirty = ioctl->CheckExtension(kvm.get(), KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
  for (const Result<int>* r : {&routes, &memslots, &max_vcpus, &idmap, &pit2, &resample,
                               &mp_state, &ioeventfd, &any_length, &manual_dirty}) {
    if (!*r) return r->error();
  }
  // KVM_CAP_IRQ_ROUTING answers 1 on old kernels and KVM_MAX_IRQ_ROUTES (4096) on new ones.
  caps.max_irq_routes = *routes > 1 ? *routes : 1024;
  caps.max_memslots = *memslots > 0 ? *memslots : 32;
  caps.max_vcpus = *max_vcpus > 0 ? *max_vcpus : 1;
  caps.identity_map_addr = *idmap > 0;
  caps.pit2 = *pit2 > 0;
  caps.irqfd_resample = *resample > 0;
  caps.mp_state = *mp_state > 0;
  caps.ioeventfd = *ioeventfd > 0;
  caps.ioeventfd_any_length = *any_length > 0;
  caps.manual_dirty_log = (*manual_dirty & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0;

  auto mmap_size = ioctl->GetVcpuMmapSize(kvm.get());
  if (!mmap_size) return mmap_size.error();
  if (*mmap_size < static_cast<int>(sizeof(kvm_run))) {
    return Error::Make(ErrorCode::kUnavailable, "KVM_GET_VCPU_MMAP_SIZE",
                       "size " + std::to_string(*mmap_size) + " smaller than struct kvm_run");
  }
  caps.vcpu_mmap_size = *mmap_size;

  auto cpuid = ReadSupportedCpuid(*ioctl, kvm.get());
  if (!cpuid) return cpuid.error();
  auto msrs = ReadMsrList(*ioctl, kvm.get(), /*features=*/false);
  if (!msrs) return msrs.error();
  auto feature_msrs = ReadMsrList(*ioctl, kvm.get(), /*features=*/true);
  if (!feature_msrs) return feature_msrs.error();
  std::vector<uint32_t> saveable;
  for (const std::vector<uint32_t>* list : {&*msrs, &*feature_msrs}) {
    for (uint32_t index : *list) {
      if (index != 0x10 && std::find(saveable.begin(), saveable.end(), index) == saveable.end()) {
        saveable.push_back(index);
      }
    }
  }

  const int fd = kvm.release();
  return std::unique_ptr<KvmHypervisor>(new KvmHypervisor(std::move(ioctl), fd, caps,
                                                          std::move(*cpuid), std::move(saveable)));
}

Availability KvmHypervisor::Probe(std::shared_ptr<KvmIoctl> ioctl, std::string device) {
  auto opened = Create(std::move(ioctl), device);
  if (opened) return {};
  const Error& e = opened.error();
  if (std::strcmp(e.operation, "open") == 0) {
    const int err = static_cast<int>(e.native_code);
    std::string reason = device + ": " + std::strerror(err);
    if (err == ENOENT || err == ENODEV || err == ENXIO) {
      return {Unavailability::kDeviceMissing, std::move(reason)};
    }
    if (err == EACCES || err == EPERM) return {Unavailability::kPermissionDenied, reason};
    return {Unavailability::kOther, std::move(reason)};
  }
  // Name the device in every reason, not only in open failures.
  if (e.code == ErrorCode::kUnavailable) {
    return {Unavailability::kApiVersion, device + ": " + e.Message()};
  }
  return {Unavailability::kOther, device + ": " + e.Message()};
}

KvmHypervisor::KvmHypervisor(std::shared_ptr<KvmIoctl> ioctl, int kvm_fd, KvmHostCaps caps,
                             Cpuid cpuid, std::vector<uint32_t> saveable_msrs)
    : ioctl_(std::move(ioctl)),
      kvm_fd_(kvm_fd),
      caps_(caps),
      supported_cpuid_(std::move(cpuid)),
      saveable_msrs_(std::make_shared<const std::vector<uint32_t>>(std::move(saveable_msrs))) {}

KvmHypervisor::~KvmHypervisor() { (void)ioctl_->Close(kvm_fd_); }

Result<std::unique_ptr<Partition>> KvmHypervisor::CreatePartition(const PartitionConfig& config) {
  if (config.vcpu_count == 0 || config.vcpu_count > static_cast<uint32_t>(caps_.max_vcpus)) {
    return Error::Make(ErrorCode::kInvalidArgument, "KvmHypervisor::CreatePartition",
                       "vcpu_count " + std::to_string(config.vcpu_count) + " not in 1.." +
                           std::to_string(caps_.max_vcpus));
  }
  if (config.pit && !config.irqchip) {
    return Error::Make(ErrorCode::kInvalidArgument, "KvmHypervisor::CreatePartition",
                       "the in-kernel PIT needs the in-kernel irqchip (PartitionConfig::irqchip)");
  }
  if (config.pit && !caps_.pit2) {
    return Error::Make(ErrorCode::kUnavailable, "KvmHypervisor::CreatePartition",
                       "no in-kernel PIT: the host lacks KVM_CAP_PIT2");
  }
  auto vm_fd = ioctl_->CreateVm(kvm_fd_, 0);
  if (!vm_fd) return vm_fd.error();
  KvmFd vm(ioctl_, *vm_fd);

  // Both addresses must be set before the first vCPU exists; they only matter on Intel (real
  // mode emulation) but are harmless elsewhere. They sit just below the 4 GiB boundary.
  if (caps_.identity_map_addr) {
    if (Status s = ioctl_->SetIdentityMapAddr(vm.get(), kIdentityMapAddress); !s) return s.error();
  }
  if (Status s = ioctl_->SetTssAddr(vm.get(), kTssAddress); !s) return s.error();
  if (config.irqchip) {
    if (Status s = ioctl_->CreateIrqchip(vm.get()); !s) return s.error();
  }
  if (config.pit) {
    // The dummy speaker makes port 0x61 an in-kernel port too (as QEMU and kvmtool do), so a
    // guest polling the PIT's OUT2 through it takes no exits.
    kvm_pit_config pit{};
    pit.flags = KVM_PIT_SPEAKER_DUMMY;
    if (Status s = ioctl_->CreatePit2(vm.get(), pit); !s) return s.error();
  }
  KvmVcpuConfig vcpus;
  vcpus.mmap_size = caps_.vcpu_mmap_size;
  vcpus.mp_state = caps_.mp_state;
  vcpus.saveable_msrs = saveable_msrs_;
  // KVM_CAP_XSAVE2 answers on the VM fd: the area size (>= 4 KiB) with KVM_GET_XSAVE2, else 0.
  auto xsave2 = ioctl_->CheckExtension(vm.get(), KVM_CAP_XSAVE2);
  if (!xsave2) return xsave2.error();
  if (*xsave2 >= static_cast<int>(sizeof(kvm_xsave))) vcpus.xsave2_size = static_cast<uint32_t>(*xsave2);
  if (caps_.manual_dirty_log) {
    // Reads then clear only the pages they return (KVM_CLEAR_DIRTY_LOG), instead of KVM clearing
    // a whole slot at every KVM_GET_DIRTY_LOG.
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
    cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
    if (Status s = ioctl_->EnableCap(vm.get(), cap); !s) return s.error();
  }
  return KvmPartition::Create(ioctl_, std::move(vm), config, caps_, supported_cpuid_, vcpus);
}

BackendInfo KvmBackendInfo() {
  return BackendInfo{
      "kvm",
      [] { return KvmHypervisor::Probe(MakeSystemKvmIoctl()); },
      []() -> Result<std::unique_ptr<Hypervisor>> {
        auto h = KvmHypervisor::Create(MakeSystemKvmIoctl());
        if (!h) return h.error();
        return std::unique_ptr<Hypervisor>(std::move(*h));
      },
  };
}

}  // namespace virt::kvm
