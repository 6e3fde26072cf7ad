// KvmRoutingBuffer: irqchip default routes followed by MSI routes, in one reusable buffer.
#include "kvm_routing_buffer.h"

#include <cstring>

namespace virt::kvm {

static_assert(sizeof(kvm_irq_routing) <= sizeof(kvm_irq_routing_entry),
              "the header must fit in the first storage slot");

const kvm_irq_routing& KvmRoutingBuffer::Build(std::span<const RoutingEntry> msi_entries) {
  const size_t n = (irqchip_defaults_ ? kIrqchipEntries : 0) + msi_entries.size();
  // Slot 0 holds the header (its size is a multiple of the entry alignment); entries follow
  // exactly where kvm_irq_routing::entries[] puts them.
  const size_t header_slots = (sizeof(kvm_irq_routing) + sizeof(kvm_irq_routing_entry) - 1) /
                              sizeof(kvm_irq_routing_entry);
  if (storage_.size() < header_slots + n) storage_.resize(header_slots + n);
  auto* routing = reinterpret_cast<kvm_irq_routing*>(storage_.data());
  std::memset(routing, 0, sizeof(kvm_irq_routing));
  routing->nr = static_cast<uint32_t>(n);
  kvm_irq_routing_entry* out = routing->entries;

  size_t i = 0;
  if (irqchip_defaults_) {
    for (uint32_t gsi = 0; gsi < 16; ++gsi) {
      kvm_irq_routing_entry e{};
      e.gsi = gsi;
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
      e.u.irqchip.pin = gsi % 8;
      out[i++] = e;
    }
    for (uint32_t gsi = 0; gsi < kIrqchipGsis; ++gsi) {
      kvm_irq_routing_entry e{};
      e.gsi = gsi;
      e.type = KVM_IRQ_ROUTING_IRQCHIP;
      e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
      e.u.irqchip.pin = gsi;
      out[i++] = e;
    }
  }
  for (const RoutingEntry& r : msi_entries) {
    kvm_irq_routing_entry e{};
    e.gsi = r.gsi;
    e.type = KVM_IRQ_ROUTING_MSI;
    e.u.msi.address_lo = r.msi.address_lo();
    e.u.msi.address_hi = r.msi.address_hi();
    e.u.msi.data = r.msi.data;
    out[i++] = e;
  }
  return *routing;
}

}  // namespace virt::kvm
