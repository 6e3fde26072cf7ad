// MshvRoutingBuffer: builds the mshv_user_irq_table that MSHV_SET_MSI_ROUTING installs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "virt/msi_routing_table.h"
#include "virt/mshv/mshv_abi.h"

namespace virt::mshv {

// {nr, rsvd 0} followed by one mshv_user_irq_entry {gsi, address_lo, address_hi, data} per MSI
// route, in table order; MSI address and data go in as-is. MSHV has no irqchip pin routes to
// repeat (unlike KVM). The buffer is reused between pushes (no allocation once it has grown).
class MshvRoutingBuffer {
 public:
  const mshv_user_irq_table& Build(std::span<const RoutingEntry> entries);

 private:
  std::vector<uint64_t> storage_;  // 8-byte aligned: header, then entries from byte 8
};

}  // namespace virt::mshv
