// Platform: the devices of the test-kernel PC (CONTRACT.md) registered on a port and an MMIO bus.
#pragma once

#include <cstdint>
#include <memory>

#include "virt/irq_lines.h"
#include "virt/result.h"
#include "virt_run/bus.h"
#include "virt_run/console.h"
#include "virt_run/debug_exit.h"
#include "virt_run/fw_cfg.h"
#include "virt_run/isa_irq_lines.h"
#include "virt_run/level_irq_device.h"
#include "virt_run/mmio_scratch.h"
#include "virt_run/pci_config.h"
#include "virt_run/serial_8250.h"
#include "virt_run/stop_controller.h"
#include "virt_run/test_device.h"

namespace virt::run {

struct PlatformConfig {
  uint16_t cpus = 1;
  uint64_t ram_bytes = 0;
  IrqLines* irq_lines = nullptr;  // null: no IRQ-line ports, no level device
};

// Owns the devices and both buses. The debug-exit port and device-thread failures report to
// `stop`; the UART writes to `console`. Both must outlive the platform.
class Platform {
 public:
  static Result<std::unique_ptr<Platform>> Create(const PlatformConfig& config, Console& console,
                                                  StopController& stop);
  ~Platform() { Stop(); }

  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  Bus& ports() { return ports_; }
  Bus& mmio() { return mmio_; }
  bool has_irq_lines() const { return isa_irq_lines_ != nullptr; }

  // Stops device threads and detaches their routes (the level device). Call after the vCPUs
  // stopped, before the partition is destroyed. Idempotent.
  void Stop();

 private:
  Platform(const PlatformConfig& config, Console& console, StopController& stop);

  Serial8250 serial_;
  DebugExit debug_exit_;
  FwCfg fw_cfg_;
  TestDevice test_device_;
  PciConfig pci_config_;
  MmioScratch scratch_;
  std::unique_ptr<IsaIrqLines> isa_irq_lines_;
  std::unique_ptr<LevelIrqDevice> level_irq_;
  Bus ports_;
  Bus mmio_;
};

}  // namespace virt::run
