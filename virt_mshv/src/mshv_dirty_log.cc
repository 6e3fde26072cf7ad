// MshvDirtyLog: enabling GPA access tracking and reading one range's dirty bits.
#include "mshv_dirty_log.h"

#include <bit>
#include <cstring>
#include <string>
#include <utility>

#include "mshv_hvcall.h"

namespace virt::mshv {
namespace {

constexpr uint64_t kPage = 4096;
constexpr const char* kReadOp = "DirtyLog::ReadAndClear";
static_assert(std::endian::native == std::endian::little, "the bitmap's bytes are read as words");

}  // namespace

MshvDirtyLog::MshvDirtyLog(std::shared_ptr<MshvIoctl> ioctl, int partition_fd, FindRegion find)
    : ioctl_(std::move(ioctl)), partition_fd_(partition_fd), find_(std::move(find)) {}

Status MshvDirtyLog::Enable() {
  std::lock_guard lock(mu_);
  if (enabled_) return Ok();
  if (Status s = SetPartitionProperty(*ioctl_, partition_fd_,
                                      HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING, 1);
      !s) {
    return s;
  }
  enabled_ = true;
  return Ok();
}

Result<std::vector<uint64_t>> MshvDirtyLog::ReadAndClear(uint64_t guest_address, uint64_t size) {
  if (size == 0 || guest_address % kPage != 0 || size % kPage != 0) {
    return Error::Make(ErrorCode::kInvalidArgument, kReadOp,
                       "the range must be page aligned and non-empty");
  }
  auto region = find_(guest_address, size);
  if (!region) return region.error();
  if (!HasFlag(region->flags, MemoryFlags::kDirtyLog)) {
    return Error::Make(ErrorCode::kInvalidArgument, kReadOp,
                       "the region holding the range was not mapped with MemoryFlags::kDirtyLog");
  }
  {
    std::lock_guard lock(mu_);
    if (!enabled_) {
      return Error::Make(ErrorCode::kFailedPrecondition, kReadOp,
                         "MSHV tracks dirty pages only after DirtyLog::Enable");
    }
  }
  const uint64_t pages = size / kPage;
  // The kernel writes (pages + 7) / 8 bytes, bit i of byte i / 8 for page i: on a little-endian
  // host that is bit i % 64 of word i / 64, DirtyLog's packing.
  std::vector<uint64_t> words((pages + 63) / 64, 0);
  mshv_gpap_access_bitmap args{};
  args.access_type = MSHV_GPAP_ACCESS_TYPE_DIRTY;
  args.access_op = MSHV_GPAP_ACCESS_OP_CLEAR;
  args.page_count = pages;
  args.gpap_base = guest_address / kPage;
  args.bitmap_ptr = reinterpret_cast<uintptr_t>(words.data());
  if (Status s = ioctl_->GetGpapAccessBitmap(partition_fd_, &args); !s) return s.error();
  if (pages % 64 != 0) words.back() &= (uint64_t{1} << (pages % 64)) - 1;  // past the range
  return words;
}

}  // namespace virt::mshv
