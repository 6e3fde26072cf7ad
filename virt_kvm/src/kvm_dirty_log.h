// KvmDirtyLog: KVM_GET_DIRTY_LOG (and KVM_CLEAR_DIRTY_LOG) behind DirtyLog's per-range meaning.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "virt/dirty_log.h"
#include "virt/guest_memory_map.h"
#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {

// KVM logs per memslot. With manual protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, enabled by
// the hypervisor at partition creation) a read is KVM_GET_DIRTY_LOG of the slot, then
// KVM_CLEAR_DIRTY_LOG of exactly the range's set bits (the range widened to KVM's 64-page
// granularity with a mask, so no page outside it is cleared). Without it KVM_GET_DIRTY_LOG
// clears the whole slot, so the bits outside the range are kept here and handed out by later
// reads. Either way a read returns and clears exactly its range's bits.
class KvmDirtyLog final : public DirtyLog {
 public:
  // Looks up the region holding a range (the partition's map, under its lock).
  using FindRegion = std::function<Result<GuestMemoryMap::Mapping>(uint64_t, uint64_t)>;

  KvmDirtyLog(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, bool manual, FindRegion find);

  // A no-op: regions mapped with kDirtyLog are tracked from their map on.
  Status Enable() override { return Ok(); }
  Result<std::vector<uint64_t>> ReadAndClear(uint64_t guest_address, uint64_t size) override;

  // The partition unmapped (or remapped) `slot`: its kept bits are dropped.
  void Forget(uint32_t slot);

 private:
  // ReadAndClear of a whole slot, without scratch copies. Called with mu_ held.
  Result<std::vector<uint64_t>> ReadWholeSlot(uint32_t slot, uint64_t slot_pages);

  std::shared_ptr<KvmIoctl> ioctl_;
  const int vm_fd_;
  const bool manual_;
  FindRegion find_;
  std::mutex mu_;
  std::map<uint32_t, std::vector<uint64_t>> kept_;  // guarded by mu_: slot -> bits (no manual)
};

}  // namespace virt::kvm
