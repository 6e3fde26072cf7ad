// Platform: creating the devices and claiming their ranges.
#include "virt_run/platform.h"

#include <algorithm>

#include "virt_run/exit_status.h"

namespace virt::run {

Platform::Platform(const PlatformConfig& config, Console& console, StopController& stop)
    : serial_([&console](uint8_t byte) { console.Write({&byte, 1}); }),
      debug_exit_([&stop](uint32_t code) { stop.StopWithDebugExit(code); }),
      fw_cfg_(config.cpus, config.ram_bytes) {}

Result<std::unique_ptr<Platform>> Platform::Create(const PlatformConfig& config,
                                                   Console& console, StopController& stop) {
  std::unique_ptr<Platform> p(new Platform(config, console, stop));
  Bus& ports = p->ports_;
  struct Claim {
    uint64_t base, size;
    Device* device;
    const char* name;
  };
  const Claim claims[] = {
      {DebugExit::kBase, DebugExit::kPorts, &p->debug_exit_, "debug-exit"},
      {TestDevice::kBase, TestDevice::kPorts, &p->test_device_, "pc-testdev"},
      {Serial8250::kCom1Base, Serial8250::kPorts, &p->serial_, "COM1"},
      {FwCfg::kBase, FwCfg::kPorts, &p->fw_cfg_, "fw_cfg"},
      {PciConfig::kBase, PciConfig::kPorts, &p->pci_config_, "PCI config"},
  };
  for (const Claim& c : claims) {
    if (Status s = ports.Insert(c.base, c.size, c.device, c.name); !s) return s.error();
  }
  if (Status s = p->mmio_.Insert(MmioScratch::kBase, MmioScratch::kSize, &p->scratch_,
                                 "pc-testdev MMIO scratch");
      !s) {
    return s.error();
  }
  if (config.irq_lines != nullptr) {
    p->isa_irq_lines_ = std::make_unique<IsaIrqLines>(*config.irq_lines);
    const uint32_t lines = std::min<uint32_t>(IsaIrqLines::kPorts, config.irq_lines->line_count());
    if (lines > 0) {
      if (Status s = ports.Insert(IsaIrqLines::kBase, lines, p->isa_irq_lines_.get(), "IRQ lines");
          !s) {
        return s.error();
      }
    }
    auto level = LevelIrqDevice::Create(*config.irq_lines, [&stop](const Error& e) {
      stop.Stop(Verdict{kStatusInternal, "level-interrupt device: " + e.Message()});
    });
    if (!level) return level.error();
    p->level_irq_ = std::move(*level);
    if (Status s = ports.Insert(LevelIrqDevice::kBase, LevelIrqDevice::kPorts,
                                p->level_irq_.get(), "level-interrupt device");
        !s) {
      return s.error();
    }
  }
  return p;
}

void Platform::Stop() {
  if (level_irq_) level_irq_->Stop();
}

}  // namespace virt::run
