// IrqLines: the optional legacy interrupt lines of an in-kernel PIC/IOAPIC (Partition::irq_lines()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "virt/irq_line_route.h"
#include "virt/result.h"

namespace virt {

// Lines 0..line_count()-1 are the IOAPIC pins (KVM: 24; 0-15 also reach the PIC), numbered as
// their GSIs. Only hypervisors with an in-kernel IOAPIC/PIC have this capability (KVM with
// PartitionConfig::irqchip); MSHV and WHP emulate only the LAPIC, so their partitions return
// nullptr. Thread-safe.
class IrqLines {
 public:
  using ErrorHandler = std::function<void(const Error&)>;

  virtual ~IrqLines() = default;

  virtual uint32_t line_count() const = 0;

  // Sets the line's level (KVM_IRQ_LINE {irq = line, level}). An edge-triggered pin fires on
  // the 0 -> 1 change; a level pin stays pending while 1. kInvalidArgument for line >=
  // line_count().
  virtual Status SetLevel(uint32_t line, bool level) = 0;

  // A new route whose event drives `line` (KVM_IRQFD {gsi = line}, with
  // KVM_IRQFD_FLAG_RESAMPLE and a resample event for kLevelResample). The pin routes are always
  // in the kernel's routing table, so the route is armed at once; a RouteBatch does not delay
  // it. Several routes may share a line. kInvalidArgument for a bad line; on any error nothing
  // is left registered or open.
  virtual Result<std::unique_ptr<IrqLineRoute>> NewLineRoute(uint32_t line,
                                                             LineTrigger trigger) = 0;

  // Receives teardown failures of routes destroyed without Release(). Default: stderr. The
  // handler must not call back into the lines or their routes.
  virtual void SetErrorHandler(ErrorHandler handler) = 0;
};

}  // namespace virt
