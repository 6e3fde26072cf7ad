// KvmPartitionState: the clock, the in-kernel PIC/IOAPIC and PIT, and the routes.
#include "kvm_partition_state.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace virt::kvm {
namespace {

constexpr uint32_t kChips[] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC};
constexpr size_t kIrqchipBytes = sizeof(kvm_irqchip) * 3;

Error Invalid(const char* op, std::string detail) {
  return Error::Make(ErrorCode::kInvalidArgument, op, std::move(detail));
}

}  // namespace

KvmPartitionState::KvmPartitionState(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, IrqFd* irqfd,
                                     bool pit)
    : ioctl_(std::move(ioctl)), vm_fd_(vm_fd), irqfd_(irqfd) {
  parts_.push_back(PartitionStatePart::kClock);
  if (irqfd_ != nullptr) parts_.push_back(PartitionStatePart::kIrqchip);
  if (pit) parts_.push_back(PartitionStatePart::kPit);
  if (irqfd_ != nullptr) parts_.push_back(PartitionStatePart::kRoutes);
}

bool KvmPartitionState::Supports(PartitionStatePart part) const {
  return std::find(parts_.begin(), parts_.end(), part) != parts_.end();
}

Status KvmPartitionState::Save(PartitionStatePart part, PartitionState& into) {
  switch (part) {
    case PartitionStatePart::kClock: {
      kvm_clock_data c{};
      if (Status s = ioctl_->GetClock(vm_fd_, &c); !s) return s;
      into.clock = ClockState{c.clock, c.flags};
      return Ok();
    }
    case PartitionStatePart::kIrqchip: {
      std::vector<uint8_t> bytes(kIrqchipBytes);
      for (size_t i = 0; i < 3; ++i) {
        kvm_irqchip chip{};
        chip.chip_id = kChips[i];
        if (Status s = ioctl_->GetIrqchip(vm_fd_, &chip); !s) return s;
        std::memcpy(bytes.data() + i * sizeof chip, &chip, sizeof chip);
      }
      into.irqchip = std::move(bytes);
      return Ok();
    }
    case PartitionStatePart::kPit: {
      kvm_pit_state2 pit{};
      if (Status s = ioctl_->GetPit2(vm_fd_, &pit); !s) return s;
      const auto* p = reinterpret_cast<const uint8_t*>(&pit);
      into.pit = std::vector<uint8_t>(p, p + sizeof pit);
      return Ok();
    }
    case PartitionStatePart::kRoutes: {
      auto routes = irqfd_->Routes();
      if (!routes) return routes.error();
      into.routes = std::move(*routes);
      return Ok();
    }
  }
  return Invalid("KvmPartitionState::SaveState", "unknown part");
}

Status KvmPartitionState::Load(PartitionStatePart part, const PartitionState& from) {
  switch (part) {
    case PartitionStatePart::kClock: {
      kvm_clock_data c{};
      c.clock = from.clock->ns;
      return ioctl_->SetClock(vm_fd_, c);
    }
    case PartitionStatePart::kIrqchip: {
      for (size_t i = 0; i < 3; ++i) {
        kvm_irqchip chip{};
        std::memcpy(&chip, from.irqchip->data() + i * sizeof chip, sizeof chip);
        if (Status s = ioctl_->SetIrqchip(vm_fd_, chip); !s) return s;
      }
      return Ok();
    }
    case PartitionStatePart::kPit: {
      kvm_pit_state2 pit{};
      std::memcpy(&pit, from.pit->data(), sizeof pit);
      return ioctl_->SetPit2(vm_fd_, pit);
    }
    case PartitionStatePart::kRoutes:
      return Ok();  // recreated by RestoreState itself: the routes go back to the caller
  }
  return Invalid("KvmPartitionState::RestoreState", "unknown part");
}

Result<PartitionState> KvmPartitionState::SaveState(std::span<const PartitionStatePart> parts) {
  PartitionState state;
  state.backend = "kvm";
  if (parts.empty()) parts = parts_;
  for (PartitionStatePart p : kPartitionRestoreOrder) {
    if (std::find(parts.begin(), parts.end(), p) == parts.end()) continue;
    if (!Supports(p)) {
      return Error::Make(ErrorCode::kUnavailable, "PartitionStateControl::SaveState",
                         std::string("this partition has no ") + ToString(p));
    }
    if (Status s = Save(p, state); !s) {
      Error e = s.error();
      e.detail = std::string("saving ") + ToString(p) + (e.detail.empty() ? "" : ": ") + e.detail;
      return e;
    }
  }
  return state;
}

Result<std::vector<std::unique_ptr<IrqFdRoute>>> KvmPartitionState::RestoreState(
    const PartitionState& state) {
  constexpr const char* kOp = "PartitionStateControl::RestoreState";
  if (state.backend != "kvm") {
    return Error::Make(ErrorCode::kInvalidArgument, kOp,
                       "the state was saved by backend " + state.backend + ", this is kvm");
  }
  for (PartitionStatePart p : state.parts()) {
    if (!Supports(p)) {
      return Error::Make(ErrorCode::kUnavailable, kOp,
                         std::string("this partition has no ") + ToString(p) +
                             " to restore; nothing was changed");
    }
  }
  // Sizes first, so nothing is half restored for a malformed blob.
  if (state.irqchip && state.irqchip->size() != kIrqchipBytes) {
    return Invalid(kOp, "an irqchip part of " + std::to_string(state.irqchip->size()) +
                            " bytes; KVM's is " + std::to_string(kIrqchipBytes));
  }
  if (state.pit && state.pit->size() != sizeof(kvm_pit_state2)) {
    return Invalid(kOp, "a PIT part of " + std::to_string(state.pit->size()) +
                            " bytes; KVM's is " + std::to_string(sizeof(kvm_pit_state2)));
  }
  if (state.irqchip) {
    for (size_t i = 0; i < 3; ++i) {
      uint32_t id = 0;
      std::memcpy(&id, state.irqchip->data() + i * sizeof(kvm_irqchip), sizeof id);
      if (id != kChips[i]) return Invalid(kOp, "the irqchip part's chips are out of order");
    }
  }
  for (PartitionStatePart p : state.parts()) {
    if (Status s = Load(p, state); !s) {
      Error e = s.error();
      e.detail = std::string("restoring ") + ToString(p) + " failed" +
                 (e.detail.empty() ? "" : ": " + e.detail);
      return e;
    }
  }
  if (!state.routes) return std::vector<std::unique_ptr<IrqFdRoute>>{};
  return RestoreRoutes(*irqfd_, *state.routes);
}

}  // namespace virt::kvm
