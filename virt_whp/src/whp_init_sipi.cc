// Decoding of a trapped xAPIC ICR write (INIT / SIPI) into WHV_INTERRUPT_CONTROLs.
#include "whp_init_sipi.h"

namespace virt::whp {
namespace {

constexpr uint32_t kDeliveryInit = 5;
constexpr uint32_t kDeliverySipi = 6;

WHV_INTERRUPT_CONTROL Control(uint32_t type, uint32_t mode, uint32_t trigger, uint32_t dest,
                              uint32_t vector) {
  WHV_INTERRUPT_CONTROL c{};
  c.Type = type;
  c.DestinationMode = mode;
  c.TriggerMode = trigger;
  c.Destination = dest;
  c.Vector = vector;
  return c;
}

}  // namespace

std::optional<std::vector<WHV_INTERRUPT_CONTROL>> InitSipiControls(uint64_t icr, uint32_t self,
                                                                   uint32_t vcpu_count) {
  const uint32_t delivery = static_cast<uint32_t>(icr >> 8) & 7;
  if (delivery != kDeliveryInit && delivery != kDeliverySipi) return std::nullopt;
  const uint32_t vector = static_cast<uint32_t>(icr) & 0xFF;
  const uint32_t logical = static_cast<uint32_t>(icr >> 11) & 1;
  const bool assert_level = ((icr >> 14) & 1) != 0;
  const uint32_t level_triggered = static_cast<uint32_t>(icr >> 15) & 1;
  const uint32_t shorthand = static_cast<uint32_t>(icr >> 18) & 3;
  const uint32_t destination = static_cast<uint32_t>(icr >> 56);
  const uint32_t type = delivery == kDeliveryInit ? WHvX64InterruptTypeInit
                                                  : WHvX64InterruptTypeSipi;
  const uint32_t trigger = level_triggered ? WHvX64InterruptTriggerModeLevel
                                           : WHvX64InterruptTriggerModeEdge;

  std::vector<WHV_INTERRUPT_CONTROL> out;
  if (delivery == kDeliveryInit && !assert_level && level_triggered) return out;  // de-assert
  if (shorthand == 0) {
    out.push_back(Control(type, logical ? WHvX64InterruptDestinationModeLogical
                                        : WHvX64InterruptDestinationModePhysical,
                          trigger, destination, vector));
    return out;
  }
  for (uint32_t vp = 0; vp < vcpu_count; ++vp) {
    const bool is_self = vp == self;
    if ((shorthand == 1 && !is_self) || (shorthand == 3 && is_self)) continue;
    out.push_back(Control(type, WHvX64InterruptDestinationModePhysical, trigger, vp, vector));
  }
  return out;
}

}  // namespace virt::whp
