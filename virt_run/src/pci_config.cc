// PciConfig: the address latch and an all-ones data window.
#include "virt_run/pci_config.h"

namespace virt::run {

Status PciConfig::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t lane = offset + i;
    data[i] = lane < 4 ? static_cast<uint8_t>(address_ >> (8 * lane)) : 0xFF;
  }
  return Ok();
}

Status PciConfig::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t lane = offset + i;
    if (lane >= 4) continue;  // config data of a device that does not exist
    address_ = (address_ & ~(0xFFu << (8 * lane))) | (uint32_t{data[i]} << (8 * lane));
  }
  return Ok();
}

uint32_t PciConfig::address() const {
  std::lock_guard lock(mu_);
  return address_;
}

}  // namespace virt::run
