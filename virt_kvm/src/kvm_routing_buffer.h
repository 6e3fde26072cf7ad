// KvmRoutingBuffer: builds the kvm_irq_routing that KVM_SET_GSI_ROUTING installs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "virt/kvm/kvm_ioctl.h"
#include "virt/msi_routing_table.h"

namespace virt::kvm {

// KVM_SET_GSI_ROUTING replaces the whole table, including the default PIC/IOAPIC pin routes
// KVM_CREATE_IRQCHIP installed, so every push must carry those again: GSIs 0-15 to the PIC
// (master pins 0-7, slave pins 0-7) and GSIs 0-23 to IOAPIC pins 0-23, then the MSI entries.
// The buffer is sized once for the largest table and reused by every push; the pin routes are
// written once, so a push only writes the header and the MSI entries.
class KvmRoutingBuffer {
 public:
  static constexpr uint32_t kIrqchipGsis = 24;     // IOAPIC pins
  static constexpr uint32_t kIrqchipEntries = 40;  // 16 PIC + 24 IOAPIC

  // `max_msi_entries`: the most MSI entries a push will carry; the buffer is sized for them now,
  // so no push allocates.
  KvmRoutingBuffer(bool irqchip_defaults, uint32_t max_msi_entries);

  const kvm_irq_routing& Build(std::span<const RoutingEntry> msi_entries);

 private:
  bool irqchip_defaults_;
  std::vector<kvm_irq_routing_entry> storage_;  // header lives in storage_[0]'s bytes
};

}  // namespace virt::kvm
