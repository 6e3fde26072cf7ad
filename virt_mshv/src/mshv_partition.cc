// MshvPartition: guest memory mappings, vCPU creation and HVCALL_ASSERT_VIRTUAL_INTERRUPT.
#include "mshv_partition.h"

#include <cstdio>
#include <string>
#include <utility>

#include "mshv_hvcall.h"
#include "mshv_irqfd.h"
#include "mshv_vcpu.h"

namespace virt::mshv {
namespace {

bool Aligned(uint64_t v) { return (v & (kPageSize - 1)) == 0; }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

Result<std::unique_ptr<Partition>> MshvPartition::Create(std::shared_ptr<MshvIoctl> ioctl,
                                                         MshvFd partition,
                                                         const PartitionConfig& config) {
  std::unique_ptr<MshvPartition> p(new MshvPartition(ioctl, std::move(partition), config));
  if (config.irqchip) {
    auto irqfd = MshvIrqFd::Create(ioctl, p->partition_.get());
    if (!irqfd) return irqfd.error();
    p->irqfd_ = std::move(*irqfd);
  }
  return std::unique_ptr<Partition>(std::move(p));
}

MshvPartition::MshvPartition(std::shared_ptr<MshvIoctl> ioctl, MshvFd partition,
                             const PartitionConfig& config)
    : ioctl_(std::move(ioctl)),
      partition_(std::move(partition)),
      config_(config),
      vcpu_created_(config.vcpu_count, false) {}

MshvPartition::~MshvPartition() {
  // Closing the partition fd drops every irqfd in one go; deassigning them one by one would
  // cost an RCU grace period each. Routes still alive see kPartitionGone from here on.
  if (irqfd_) irqfd_->Shutdown();
}

Status MshvPartition::MapMemory(const MemoryRegion& region) {
  constexpr const char* kOp = "MshvPartition::MapMemory";
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
  if (HasFlag(region.flags, MemoryFlags::kDirtyLog)) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "kDirtyLog is not supported by the MSHV backend");
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
  mshv_user_mem_region r{};
  r.size = region.size;
  r.guest_pfn = region.guest_address / kPageSize;
  r.userspace_addr = host;
  r.flags = static_cast<uint8_t>(1u << MSHV_SET_MEM_BIT_EXECUTABLE);
  if (!HasFlag(region.flags, MemoryFlags::kReadOnly)) r.flags |= 1u << MSHV_SET_MEM_BIT_WRITABLE;
  if (Status s = ioctl_->SetGuestMemory(partition_.get(), r); !s) return s;
  regions_.emplace(region.guest_address, Mapping{region.size, host});
  return Ok();
}

Status MshvPartition::UnmapMemory(uint64_t guest_address, uint64_t size) {
  std::lock_guard lock(memory_mu_);
  auto it = regions_.find(guest_address);
  if (it == regions_.end() || it->second.size != size) {
    return Error::Make(ErrorCode::kNotFound, "MshvPartition::UnmapMemory",
                       "no region mapped at exactly [" + Hex(guest_address) + ", +" + Hex(size) +
                           ")");
  }
  mshv_user_mem_region r{};
  r.size = size;
  r.guest_pfn = guest_address / kPageSize;
  r.userspace_addr = it->second.host;
  r.flags = static_cast<uint8_t>(1u << MSHV_SET_MEM_BIT_UNMAP);
  if (Status s = ioctl_->SetGuestMemory(partition_.get(), r); !s) return s;
  regions_.erase(it);
  return Ok();
}

Result<std::unique_ptr<Vcpu>> MshvPartition::CreateVcpu(uint32_t index) {
  std::lock_guard lock(vcpu_mu_);
  if (index >= config_.vcpu_count) {
    return Error::Make(ErrorCode::kInvalidArgument, "MshvPartition::CreateVcpu",
                       "index " + std::to_string(index) + " >= vcpu_count " +
                           std::to_string(config_.vcpu_count));
  }
  if (vcpu_created_[index]) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvPartition::CreateVcpu",
                       "vCPU " + std::to_string(index) + " already created");
  }
  auto vcpu = MshvVcpu::Create(ioctl_, partition_.get(), index);
  if (!vcpu) return vcpu.error();
  vcpu_created_[index] = true;
  return std::unique_ptr<Vcpu>(std::move(*vcpu));
}

Result<bool> MshvPartition::RequestMsi(const MsiMessage& msi) {
  auto decoded = msi.Decode();
  if (!decoded) return decoded.error();
  if (!config_.irqchip) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvPartition::RequestMsi",
                       "the partition has no LAPIC (PartitionConfig::irqchip is false)");
  }
  if (Status s = AssertVirtualInterrupt(*ioctl_, partition_.get(), *decoded); !s) {
    return s.error();
  }
  return true;
}

IrqFd* MshvPartition::irqfd() { return irqfd_.get(); }

}  // namespace virt::mshv
