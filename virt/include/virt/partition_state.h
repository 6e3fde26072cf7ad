// PartitionState: the partition-wide state a snapshot needs besides memory and vCPUs.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "virt/gsi_table.h"
#include "virt/msi_message.h"
#include "virt/result.h"

namespace virt {

enum class PartitionStatePart : uint16_t {
  kClock = 1,    // guest time (KVM_GET/SET_CLOCK)
  kIrqchip = 2,  // in-kernel PIC master, PIC slave, IOAPIC (KVM_GET/SET_IRQCHIP)
  kPit = 3,      // in-kernel PIT (KVM_GET/SET_PIT2)
  kRoutes = 4,   // the library's irqfd routes: GSI and MSI (or masked) of each
};

const char* ToString(PartitionStatePart part);

// The order RestoreState applies them in: the clock first (the PIT and the guest's view of time
// follow it), the interrupt controllers before the PIT that drives line 0, the routes last.
inline constexpr std::array<PartitionStatePart, 4> kPartitionRestoreOrder = {
    PartitionStatePart::kClock, PartitionStatePart::kIrqchip, PartitionStatePart::kPit,
    PartitionStatePart::kRoutes};

struct ClockState {
  uint64_t ns = 0;     // the guest clock (kvmclock base) in nanoseconds
  uint32_t flags = 0;  // KVM_CLOCK_* flags as read (informational; restore sets ns only)
  bool operator==(const ClockState&) const = default;
};

struct RouteState {
  Gsi gsi = 0;
  std::optional<MsiMessage> msi;  // nullopt: masked
  bool operator==(const RouteState&) const = default;
};

// Parts in the hypervisor's own layout (irqchip, PIT) are bytes, so a state restores only into
// the backend named in `backend`.
struct PartitionState {
  std::string backend;
  std::optional<ClockState> clock;
  std::optional<std::vector<uint8_t>> irqchip;  // KVM: 3 kvm_irqchip (PIC master, slave, IOAPIC)
  std::optional<std::vector<uint8_t>> pit;      // KVM: kvm_pit_state2
  std::optional<std::vector<RouteState>> routes;

  bool Has(PartitionStatePart part) const;
  std::vector<PartitionStatePart> parts() const;
  bool operator==(const PartitionState&) const = default;
};

// Byte form, as for VcpuState (magic "VIRTPART"; docs/state-format.md).
std::vector<uint8_t> SerializePartitionState(const PartitionState& state);
Result<PartitionState> ParsePartitionState(std::span<const uint8_t> bytes,
                                           std::string_view backend = {});

}  // namespace virt
