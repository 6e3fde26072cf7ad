// MshvDirtyLog: the hypervisor's partition-wide GPA dirty bits behind DirtyLog's per-range meaning.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "virt/dirty_log.h"
#include "virt/guest_memory_map.h"
#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

// The Microsoft hypervisor tracks dirty pages for the whole partition once
// HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING is 1, and MSHV_GET_GPAP_ACCESS_BITMAP reads and
// clears the bits of exactly the pages asked for, so a read is one ioctl over the range and
// nothing is kept here. Reads are restricted to regions mapped with MemoryFlags::kDirtyLog, as
// on the other backends. Holds the partition fd bare: the partition owns it and outlives this.
class MshvDirtyLog final : public DirtyLog {
 public:
  // Looks up the region holding a range (the partition's map, under its lock).
  using FindRegion = std::function<Result<GuestMemoryMap::Mapping>(uint64_t, uint64_t)>;

  MshvDirtyLog(std::shared_ptr<MshvIoctl> ioctl, int partition_fd, FindRegion find);

  // HVCALL_SET_PARTITION_PROPERTY {HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING, 1} on the
  // partition fd, the first time it succeeds; later calls make no call.
  Status Enable() override;

  // MSHV_GET_GPAP_ACCESS_BITMAP {DIRTY, CLEAR, size / 4 KiB pages from guest_address / 4 KiB}
  // into the returned words. kFailedPrecondition before Enable; the range checks of DirtyLog
  // before any call.
  Result<std::vector<uint64_t>> ReadAndClear(uint64_t guest_address, uint64_t size) override;

 private:
  std::shared_ptr<MshvIoctl> ioctl_;
  const int partition_fd_;
  FindRegion find_;
  std::mutex mu_;
  bool enabled_ = false;  // guarded by mu_
};

}  // namespace virt::mshv
