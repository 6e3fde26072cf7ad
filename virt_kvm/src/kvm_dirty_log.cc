// KvmDirtyLog: one dirty-bitmap read of a range, with KVM's slot-wide log underneath.
#include "kvm_dirty_log.h"

#include <algorithm>
#include <string>

namespace virt::kvm {
namespace {

constexpr uint64_t kPage = 4096;

// Bits [first, first + count) of `bits` as a bitmap of their own, 64 at a time.
std::vector<uint64_t> Extract(const std::vector<uint64_t>& bits, uint64_t first, uint64_t count) {
  std::vector<uint64_t> out((count + 63) / 64, 0);
  const uint64_t w0 = first / 64;
  const unsigned shift = first % 64;
  for (size_t w = 0; w < out.size(); ++w) {
    uint64_t v = bits[w0 + w] >> shift;
    if (shift != 0 && w0 + w + 1 < bits.size()) v |= bits[w0 + w + 1] << (64 - shift);
    out[w] = v;
  }
  if (count % 64 != 0) out.back() &= (uint64_t{1} << (count % 64)) - 1;
  return out;
}

// `part` (a bitmap of its own) shifted left by `shift` < 64 bits into `into`, OR-ed.
void Insert(std::vector<uint64_t>& into, const std::vector<uint64_t>& part, unsigned shift) {
  for (size_t w = 0; w < part.size(); ++w) {
    into[w] |= part[w] << shift;
    if (shift != 0 && w + 1 < into.size()) into[w + 1] |= part[w] >> (64 - shift);
  }
}

bool Any(const std::vector<uint64_t>& bits) {
  for (uint64_t w : bits) {
    if (w != 0) return true;
  }
  return false;
}

}  // namespace

KvmDirtyLog::KvmDirtyLog(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, bool manual, FindRegion find)
    : ioctl_(std::move(ioctl)), vm_fd_(vm_fd), manual_(manual), find_(std::move(find)) {}

void KvmDirtyLog::Forget(uint32_t slot) {
  std::lock_guard lock(mu_);
  kept_.erase(slot);
}

Result<std::vector<uint64_t>> KvmDirtyLog::ReadAndClear(uint64_t guest_address, uint64_t size) {
  constexpr const char* kOp = "DirtyLog::ReadAndClear";
  if (size == 0 || guest_address % kPage != 0 || size % kPage != 0) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the range must be page aligned and non-empty");
  }
  auto region = find_(guest_address, size);
  if (!region) return region.error();
  if (!HasFlag(region->flags, MemoryFlags::kDirtyLog)) {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the region holding the range was not mapped with MemoryFlags::kDirtyLog");
  }
  const uint64_t slot_pages = region->size / kPage;
  const uint64_t first = (guest_address - region->guest_address) / kPage;
  const uint64_t count = size / kPage;

  std::lock_guard lock(mu_);
  if (first == 0 && count == slot_pages) return ReadWholeSlot(region->slot, slot_pages);
  std::vector<uint64_t> slot_bits((slot_pages + 63) / 64, 0);
  kvm_dirty_log log{};
  log.slot = region->slot;
  log.dirty_bitmap = slot_bits.data();
  if (Status s = ioctl_->GetDirtyLog(vm_fd_, log); !s) return s.error();

  if (manual_) {
    std::vector<uint64_t> out = Extract(slot_bits, first, count);
    if (!Any(out)) return out;
    // KVM clears in 64-page steps from a multiple of 64; the mask's other bits stay 0, so the
    // pages around the range keep their state.
    const uint64_t start = first / 64 * 64;
    const uint64_t end = std::min(slot_pages, (first + count + 63) / 64 * 64);
    std::vector<uint64_t> mask((end - start + 63) / 64, 0);
    Insert(mask, out, static_cast<unsigned>(first - start));
    kvm_clear_dirty_log clear{};
    clear.slot = region->slot;
    clear.first_page = start;
    clear.num_pages = static_cast<uint32_t>(end - start);
    clear.dirty_bitmap = mask.data();
    if (Status s = ioctl_->ClearDirtyLog(vm_fd_, clear); !s) return s.error();
    return out;
  }
  // KVM cleared the whole slot: merge with what earlier reads kept, return the range, keep the
  // rest.
  std::vector<uint64_t>& kept = kept_[region->slot];
  kept.resize(slot_bits.size(), 0);
  for (size_t w = 0; w < slot_bits.size(); ++w) kept[w] |= slot_bits[w];
  std::vector<uint64_t> out = Extract(kept, first, count);
  // Clear what is returned: the range's bits in `kept`.
  std::vector<uint64_t> shifted((count + 63) / 64 + 1, 0);
  Insert(shifted, out, static_cast<unsigned>(first % 64));
  for (size_t w = 0; w < shifted.size() && first / 64 + w < kept.size(); ++w) {
    kept[first / 64 + w] &= ~shifted[w];
  }
  return out;
}

// The range is the whole slot: KVM writes straight into the returned bitmap, which is also the
// clear mask (no slot-sized scratch bitmap, copy or mask per read).
Result<std::vector<uint64_t>> KvmDirtyLog::ReadWholeSlot(uint32_t slot, uint64_t slot_pages) {
  std::vector<uint64_t> out((slot_pages + 63) / 64, 0);
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = out.data();
  if (Status s = ioctl_->GetDirtyLog(vm_fd_, log); !s) return s.error();
  // Only the slot's pages count, as Extract gives for a partial range.
  if (slot_pages % 64 != 0) out.back() &= (uint64_t{1} << (slot_pages % 64)) - 1;
  if (manual_) {
    if (!Any(out)) return out;
    kvm_clear_dirty_log clear{};
    clear.slot = slot;
    clear.first_page = 0;
    clear.num_pages = static_cast<uint32_t>(slot_pages);
    clear.dirty_bitmap = out.data();
    if (Status s = ioctl_->ClearDirtyLog(vm_fd_, clear); !s) return s.error();
    return out;
  }
  // KVM cleared the whole slot; what earlier reads kept is returned too, so nothing stays kept.
  if (auto it = kept_.find(slot); it != kept_.end()) {
    for (size_t w = 0; w < out.size() && w < it->second.size(); ++w) out[w] |= it->second[w];
    kept_.erase(it);
    if (slot_pages % 64 != 0) out.back() &= (uint64_t{1} << (slot_pages % 64)) - 1;
  }
  return out;
}

}  // namespace virt::kvm
