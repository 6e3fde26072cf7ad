// WhpDirtyLog: one WHvQueryGpaRangeDirtyBitmap per read of a tracked range.
#include "whp_dirty_log.h"

#include <string>

#include "whp_partition.h"
#include <utility>

namespace virt::whp {
namespace {

constexpr uint64_t kPage = 4096;
constexpr const char* kReadOp = "DirtyLog::ReadAndClear";
// WHvQueryGpaRangeDirtyBitmap takes the bitmap's size as a UINT32 byte count.
constexpr uint64_t kMaxPages = (uint64_t{0xFFFFFFFF} / 8) * 64;

}  // namespace

WhpDirtyLog::WhpDirtyLog(WhpPartitionHandle& partition, FindRegion find)
    : partition_(partition), find_(std::move(find)) {}

Result<std::vector<uint64_t>> WhpDirtyLog::ReadAndClear(uint64_t guest_address, uint64_t size) {
  if (size == 0 || guest_address % kPage != 0 || size % kPage != 0) {
    return Error::Make(ErrorCode::kInvalidArgument, kReadOp,
                       "the range must be page aligned and non-empty");
  }
  if (size / kPage > kMaxPages) {
    return Error::Make(ErrorCode::kInvalidArgument, kReadOp,
                       "the range is larger than one WHvQueryGpaRangeDirtyBitmap can read");
  }
  auto region = find_(guest_address, size);
  if (!region) return region.error();
  if (!HasFlag(region->flags, MemoryFlags::kDirtyLog)) {
    return Error::Make(ErrorCode::kInvalidArgument, kReadOp,
                       "the region holding the range was not mapped with MemoryFlags::kDirtyLog");
  }
  const uint64_t pages = size / kPage;
  // WHP writes bit i % 64 of word i / 64 for page i: DirtyLog's packing.
  std::vector<uint64_t> words((pages + 63) / 64, 0);
  if (Status s = partition_.api().QueryGpaRangeDirtyBitmap(
          partition_.get(), guest_address, size, words.data(),
          static_cast<uint32_t>(words.size() * sizeof(uint64_t)));
      !s) {
    return s.error();
  }
  if (pages % 64 != 0) words.back() &= (uint64_t{1} << (pages % 64)) - 1;  // past the range
  return words;
}

}  // namespace virt::whp
