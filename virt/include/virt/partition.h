// Partition: one VM: guest memory, vCPUs, MSI injection and the optional IrqFd.
#pragma once

#include <cstdint>
#include <memory>

#include "virt/doorbells.h"
#include "virt/irq_lines.h"
#include "virt/irqfd.h"
#include "virt/memory_region.h"
#include "virt/msi_message.h"
#include "virt/partition_cpuid.h"
#include "virt/result.h"
#include "virt/vcpu.h"

namespace virt {

struct PartitionConfig {
  uint32_t vcpu_count = 1;
  // An in-kernel interrupt controller (LAPIC/IOAPIC). Needed for MSIs and IrqFd; without it HLT
  // exits to the VMM as HaltExit.
  bool irqchip = true;
  // An in-kernel i8254 PIT on ports 0x40-0x43 (and a dummy speaker port 0x61), wired to line 0
  // (KVM_CREATE_PIT2). Needs irqchip. Backends without one (MSHV, WHP) fail CreatePartition
  // with kUnavailable naming the PIT; without irqchip the answer is kInvalidArgument.
  bool pit = false;
};

// A VM. Thread-safe. Destroying it releases every kernel object at once (no per-route
// teardown); routes and vCPUs that outlive it fail cleanly.
class Partition {
 public:
  virtual ~Partition() = default;

  // Maps host memory into the guest (KVM_SET_USER_MEMORY_REGION ...). kInvalidArgument when
  // unaligned or empty, kOverlap when it overlaps a mapped region, kExhausted when out of slots.
  virtual Status MapMemory(const MemoryRegion& region) = 0;

  // Unmaps the region mapped at exactly [guest_address, guest_address + size); kNotFound
  // otherwise. Its slot is reused by later maps.
  virtual Status UnmapMemory(uint64_t guest_address, uint64_t size) = 0;

  // Creates vCPU `index` (< PartitionConfig::vcpu_count) with its default CPUID (the host's
  // supported set with the APIC ID leaves set to `index`; see PartitionCpuid). With an irqchip,
  // vCPU 0 is the boot processor and starts runnable; the others are application processors
  // that wait for INIT/SIPI (MpState::kUninitialized): drive each from its own thread and do
  // not set their registers.
  virtual Result<std::unique_ptr<Vcpu>> CreateVcpu(uint32_t index) = 0;

  // Injects one MSI (KVM_SIGNAL_MSI ...). true when delivered, false when the guest blocked it
  // (e.g. APIC disabled). kInvalidArgument for an address outside 0xFEExxxxx.
  virtual Result<bool> RequestMsi(const MsiMessage& msi) = 0;

  // The irqfd capability, or nullptr when the backend has none (or no irqchip).
  virtual IrqFd* irqfd() = 0;

  // The CPUID query, or nullptr when the backend cannot tell what its guests may see.
  virtual PartitionCpuid* cpuid() { return nullptr; }

  // The in-hypervisor doorbells (guest writes that signal an Event without an exit), or
  // nullptr when the backend has none; UserModeDoorbells works with any backend.
  virtual Doorbells* doorbells() { return nullptr; }

  // The legacy interrupt lines, or nullptr when the hypervisor has no in-kernel IOAPIC/PIC
  // (MSHV, WHP, or KVM without irqchip).
  virtual IrqLines* irq_lines() { return nullptr; }
};

}  // namespace virt
