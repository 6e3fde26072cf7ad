// KvmPartition: memory slots, vCPU creation and KVM_SIGNAL_MSI.
#include "kvm_partition.h"

#include <string>
#include <utility>

#include "kvm_irqfd.h"
#include "kvm_vcpu.h"

namespace virt::kvm {
namespace {

bool Aligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Result<std::unique_ptr<Partition>> KvmPartition::Create(std::shared_ptr<KvmIoctl> ioctl, KvmFd vm,
                                                        const PartitionConfig& config,
                                                        const KvmHostCaps& caps,
                                                        const std::vector<uint8_t>& cpuid) {
  std::unique_ptr<KvmPartition> p(new KvmPartition(ioctl, std::move(vm), config, caps, cpuid));
  if (config.irqchip) {
    auto irqfd = KvmIrqFd::Create(ioctl, p->vm_.get(), caps.max_irq_routes);
    if (!irqfd) return irqfd.error();
    p->irqfd_ = std::move(*irqfd);
  }
  return std::unique_ptr<Partition>(std::move(p));
}

KvmPartition::KvmPartition(std::shared_ptr<KvmIoctl> ioctl, KvmFd vm,
                           const PartitionConfig& config, const KvmHostCaps& caps,
                           const std::vector<uint8_t>& cpuid)
    : ioctl_(std::move(ioctl)),
      vm_(std::move(vm)),
      config_(config),
      caps_(caps),
      cpuid_(cpuid),
      vcpu_created_(config.vcpu_count, false) {}

KvmPartition::~KvmPartition() {
  // Closing the VM fd drops every irqfd in one go; deassigning them one by one would cost a
  // grace period (~54 us) each. Routes still alive see kPartitionGone from here on.
  if (irqfd_) irqfd_->Shutdown();
}

Status KvmPartition::MapMemory(const MemoryRegion& region) {
  constexpr const char* kOp = "KvmPartition::MapMemory";
  const auto host = reinterpret_cast<uintptr_t>(region.host_address);
  if (region.size == 0 || !Aligned(region.guest_address) || !Aligned(region.size) ||
      !Aligned(host) || region.host_address == nullptr) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "guest " + Hex(region.guest_address) + " size " + Hex(region.size) +
                           " host " + Hex(host) + " must be non-empty and 4 KiB aligned");
  }
  if (region.guest_address + region.size < region.guest_address) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp, "region wraps around 2^64");
  }
  const uint64_t end = region.guest_address + region.size;

  std::lock_guard lock(memory_mu_);
  auto next = regions_.lower_bound(region.guest_address);
  bool overlaps = next != regions_.end() && next->first < end;
  if (!overlaps && next != regions_.begin()) {
    auto prev = std::prev(next);
    overlaps = prev->first + prev->second.size > region.guest_address;
  }
  if (overlaps) {
    return Error::Make(ErrorCode::kOverlap, kOp,
                       "[" + Hex(region.guest_address) + ", " + Hex(end) +
                           ") overlaps a mapped region");
  }
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
  } else if (next_slot_ < static_cast<uint32_t>(caps_.max_memslots)) {
    slot = next_slot_;
  } else {
    return Error::Make(ErrorCode::kExhausted, kOp,
                       "all " + std::to_string(caps_.max_memslots) + " memory slots in use");
  }
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = (HasFlag(region.flags, MemoryFlags::kReadOnly) ? KVM_MEM_READONLY : 0u) |
            (HasFlag(region.flags, MemoryFlags::kDirtyLog) ? KVM_MEM_LOG_DIRTY_PAGES : 0u);
  r.guest_phys_addr = region.guest_address;
  r.memory_size = region.size;
  r.userspace_addr = host;
  if (Status s = ioctl_->SetUserMemoryRegion(vm_.get(), r); !s) return s;
  if (!free_slots_.empty()) {
    free_slots_.pop_back();
  } else {
    ++next_slot_;
  }
  regions_.emplace(region.guest_address, Slot{region.size, slot});
  return Ok();
}

Status KvmPartition::UnmapMemory(uint64_t guest_address, uint64_t size) {
  std::lock_guard lock(memory_mu_);
  auto it = regions_.find(guest_address);
  if (it == regions_.end() || it->second.size != size) {
    return Error::Make(ErrorCode::kNotFound, "KvmPartition::UnmapMemory",
                       "no region mapped at exactly [" + Hex(guest_address) + ", +" + Hex(size) +
                           ")");
  }
  kvm_userspace_memory_region r{};
  r.slot = it->second.slot;
  r.guest_phys_addr = guest_address;
  r.memory_size = 0;  // deletes the slot
  if (Status s = ioctl_->SetUserMemoryRegion(vm_.get(), r); !s) return s;
  free_slots_.push_back(it->second.slot);
  regions_.erase(it);
  return Ok();
}

Result<std::unique_ptr<Vcpu>> KvmPartition::CreateVcpu(uint32_t index) {
  std::lock_guard lock(vcpu_mu_);
  if (index >= config_.vcpu_count) {
    return Error::Make(ErrorCode::kInvalidArgument, "KvmPartition::CreateVcpu",
                       "index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(config_.vcpu_count));
  }
  if (vcpu_created_[index]) {
    return Error::Make(ErrorCode::kFailedPrecondition, "KvmPartition::CreateVcpu",
                       "vCPU " + std::to_string(index) + " already created");
  }
  auto vcpu = KvmVcpu::Create(ioctl_, vm_.get(), index, caps_.vcpu_mmap_size, cpuid_);
  if (!vcpu) return vcpu.error();
  vcpu_created_[index] = true;
  return std::unique_ptr<Vcpu>(std::move(*vcpu));
}

Result<bool> KvmPartition::RequestMsi(const MsiMessage& msi) {
  if (auto decoded = msi.Decode(); !decoded) return decoded.error();
  kvm_msi m{};
  m.address_lo = msi.address_lo();
  m.address_hi = msi.address_hi();
  m.data = msi.data;
  auto delivered = ioctl_->SignalMsi(vm_.get(), m);
  if (!delivered) return delivered.error();
  return *delivered > 0;
}

IrqFd* KvmPartition::irqfd() { return irqfd_.get(); }

}  // namespace virt::kvm
