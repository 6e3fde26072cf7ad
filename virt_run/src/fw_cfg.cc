// FwCfg: items as little-endian byte strings, read one byte at a time.
#include "virt_run/fw_cfg.h"

namespace virt::run {
namespace {

std::vector<uint8_t> Le(uint64_t value, size_t bytes) {
  std::vector<uint8_t> out(bytes);
  StoreLittleEndian(value, out);
  return out;
}

}  // namespace

FwCfg::FwCfg(uint16_t cpus, uint64_t ram_bytes) {
  items_[kSignature] = {'Q', 'E', 'M', 'U'};
  items_[kId] = Le(1, 4);
  items_[kRamSize] = Le(ram_bytes, 8);
  items_[kNbCpus] = Le(cpus, 2);
  items_[kMaxRam] = Le(0, 8);
}

Status FwCfg::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset != 1) {  // the selector port reads as nothing
    for (uint8_t& b : data) b = 0xFF;
    return Ok();
  }
  auto it = items_.find(selected_);
  for (uint8_t& b : data) {
    b = it != items_.end() && position_ < it->second.size() ? it->second[position_] : 0;
    ++position_;
  }
  return Ok();
}

Status FwCfg::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0) return Ok();
  std::lock_guard lock(mu_);
  selected_ = static_cast<uint16_t>(LittleEndian(data));
  position_ = 0;
  return Ok();
}

}  // namespace virt::run
