// GuestRam: the OS-independent part (regions, move assignment).
#include "virt_run/guest_ram.h"

namespace virt::run {

GuestRam& GuestRam::operator=(GuestRam&& other) noexcept {
  if (this != &other) {
    Free(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    layout_ = other.layout_;
  }
  return *this;
}

std::vector<MemoryRegion> GuestRam::Regions() const {
  std::vector<MemoryRegion> regions;
  regions.push_back({layout_.low.begin, layout_.low.size(), data_});
  if (layout_.high.size() > 0) {
    regions.push_back({layout_.high.begin, layout_.high.size(), data_ + layout_.low.size()});
  }
  return regions;
}

}  // namespace virt::run
