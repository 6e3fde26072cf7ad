// KvmRoutingBuffer: irqchip default routes followed by MSI routes, in one reusable buffer.
#include "kvm_routing_buffer.h"

#include <cstring>

namespace virt::kvm {

static_assert(sizeof(kvm_irq_routing) <= sizeof(kvm_irq_routing_entry),
              "the header must fit in the first storage slot");

namespace {

// Storage slots for the header and `entries` routing entries (the header fits in one slot).
size_t Slots(size_t entries) {
  const size_t header_slots = (sizeof(kvm_irq_routing) + sizeof(kvm_irq_routing_entry) - 1) /
                              sizeof(kvm_irq_routing_entry);
  return header_slots + entries;
}

}  // namespace

KvmRoutingBuffer::KvmRoutingBuffer(bool irqchip_defaults, uint32_t max_msi_entries)
    : irqchip_defaults_(irqchip_defaults),
      storage_(Slots((irqchip_defaults ? kIrqchipEntries : 0) + max_msi_entries)) {
  if (!irqchip_defaults_) return;
  // The pin routes never change: written once here, right after the header, and kept there by
  // every Build (which only rewrites the header and the MSI entries behind them).
  kvm_irq_routing_entry* out = reinterpret_cast<kvm_irq_routing*>(storage_.data())->entries;
  size_t i = 0;
  for (uint32_t gsi = 0; gsi < 16; ++gsi) {
    kvm_irq_routing_entry& e = out[i++];
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
    e.u.irqchip.pin = gsi % 8;
  }
  for (uint32_t gsi = 0; gsi < kIrqchipGsis; ++gsi) {
    kvm_irq_routing_entry& e = out[i++];
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    e.u.irqchip.pin = gsi;
  }
}

const kvm_irq_routing& KvmRoutingBuffer::Build(std::span<const RoutingEntry> msi_entries) {
  const size_t first_msi = irqchip_defaults_ ? kIrqchipEntries : 0;
  const size_t n = first_msi + msi_entries.size();
  // Slot 0 holds the header (its size is a multiple of the entry alignment); entries follow
  // exactly where kvm_irq_routing::entries[] puts them. Growing keeps the pin routes in place.
  if (storage_.size() < Slots(n)) storage_.resize(Slots(n));
  auto* routing = reinterpret_cast<kvm_irq_routing*>(storage_.data());
  std::memset(routing, 0, sizeof(kvm_irq_routing));
  routing->nr = static_cast<uint32_t>(n);
  kvm_irq_routing_entry* out = routing->entries + first_msi;
  // Each field written in place (not a zeroed local copied whole: its 16-byte reloads of the
  // narrower stores just made stall store forwarding, three times an entry).
  for (const RoutingEntry& r : msi_entries) {
    kvm_irq_routing_entry& e = *out++;
    e.gsi = r.gsi;
    e.type = KVM_IRQ_ROUTING_MSI;
    e.flags = 0;
    e.pad = 0;
    std::memset(&e.u, 0, sizeof e.u);
    e.u.msi.address_lo = r.msi.address_lo();
    e.u.msi.address_hi = r.msi.address_hi();
    e.u.msi.data = r.msi.data;
  }
  return *routing;
}

}  // namespace virt::kvm
