// KvmIrqLines: KVM_IRQ_LINE and irqfds on the in-kernel irqchip's pins (Partition::irq_lines()).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "virt/irq_lines.h"
#include "virt/kvm/kvm_ioctl.h"

namespace virt::kvm {

// Shared by KvmIrqLines and its routes: the VM fd (a bare fd the partition keeps open until
// Shutdown), the alive flag and the error handler, all under one lock, so a route that outlives
// the partition finds alive == false instead of a closed (or reused) fd.
class KvmIrqLinesCore {
 public:
  KvmIrqLinesCore(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, bool resample)
      : ioctl_(std::move(ioctl)), vm_fd_(vm_fd), resample_(resample) {}

  // KVM_IRQ_LINE {line, level}.
  Status SetLevel(uint32_t line, bool level);
  // KVM_IRQFD {event_fd, gsi = line, [RESAMPLE, resample_fd]}.
  Status Assign(uint32_t line, int event_fd, int resample_fd);
  // KVM_IRQFD {event_fd, gsi = line, DEASSIGN}.
  Status Deassign(uint32_t line, int event_fd);
  bool resample_supported() const { return resample_; }

  void Shutdown();
  void SetErrorHandler(IrqLines::ErrorHandler handler);
  void Report(const Error& error);

 private:
  Status CheckAlive(const char* op) const;

  std::mutex mu_;
  const std::shared_ptr<KvmIoctl> ioctl_;
  const int vm_fd_;
  const bool resample_;
  bool alive_ = true;               // guarded by mu_
  IrqLines::ErrorHandler handler_;  // guarded by mu_
};

// The IOAPIC pins 0..23 (GSIs 0..23; 0..15 also drive the PIC), as routed by the irqchip
// defaults every routing push carries (KvmRoutingBuffer), so line routes need no push.
class KvmIrqLines final : public IrqLines {
 public:
  static constexpr uint32_t kLines = 24;

  // `resample`: the host has KVM_CAP_IRQFD_RESAMPLE.
  KvmIrqLines(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, bool resample);
  ~KvmIrqLines() override;

  uint32_t line_count() const override { return kLines; }
  Status SetLevel(uint32_t line, bool level) override;
  // kUnavailable for kLevelResample without KVM_CAP_IRQFD_RESAMPLE.
  Result<std::unique_ptr<IrqLineRoute>> NewLineRoute(uint32_t line, LineTrigger trigger) override;
  void SetErrorHandler(ErrorHandler handler) override;

  // The partition's VM fd closes next (releasing every irqfd at once): from now on every call
  // fails with kPartitionGone and none reaches the kernel.
  void Shutdown();

 private:
  std::shared_ptr<KvmIrqLinesCore> core_;
};

}  // namespace virt::kvm
