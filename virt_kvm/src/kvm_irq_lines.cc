// KvmIrqLines: line levels and line routes (irqfds on IOAPIC/PIC pins, edge or with resample).
#include "kvm_irq_lines.h"

#include <cstdio>
#include <string>
#include <utility>

namespace virt::kvm {
namespace {

Status CheckLine(const char* op, uint32_t line) {
  if (line < KvmIrqLines::kLines) return Ok();
  return Error::Make(ErrorCode::kInvalidArgument, op,
                     "line " + std::to_string(line) + " >= " +
                         std::to_string(KvmIrqLines::kLines));
}

class KvmIrqLineRoute final : public IrqLineRoute {
 public:
  KvmIrqLineRoute(std::shared_ptr<KvmIrqLinesCore> core, uint32_t line, LineTrigger trigger,
                  Event event, Event resample)
      : core_(std::move(core)),
        line_(line),
        trigger_(trigger),
        event_(std::move(event)),
        resample_(std::move(resample)) {}

  ~KvmIrqLineRoute() override {
    if (Status s = Teardown(); !s && s.error().code != ErrorCode::kAlreadyReleased &&
                               s.error().code != ErrorCode::kPartitionGone) {
      core_->Report(s.error());
    }
  }

  uint32_t line() const override { return line_; }
  LineTrigger trigger() const override { return trigger_; }
  const Event& event() const override { return event_; }
  const Event* resample_event() const override {
    return trigger_ == LineTrigger::kLevelResample ? &resample_ : nullptr;
  }
  Status Release() override { return Teardown(); }

 private:
  // Deassign first: the kernel must let go of the eventfds before they close (a closed eventfd
  // is released by the kernel too, but only after the VM notices; deassigning keeps it exact).
  Status Teardown() {
    std::lock_guard lock(mu_);
    if (released_) {
      return Error::Make(ErrorCode::kAlreadyReleased, "IrqLineRoute::Release",
                         "line " + std::to_string(line_) + " route already released");
    }
    released_ = true;
    return core_->Deassign(line_, event_.native_handle());
  }

  const std::shared_ptr<KvmIrqLinesCore> core_;
  const uint32_t line_;
  const LineTrigger trigger_;
  const Event event_;
  const Event resample_;
  std::mutex mu_;
  bool released_ = false;  // guarded by mu_
};

}  // namespace

Status KvmIrqLinesCore::CheckAlive(const char* op) const {
  if (alive_) return Ok();
  return Error::Make(ErrorCode::kPartitionGone, op, "the partition is gone");
}

Status KvmIrqLinesCore::SetLevel(uint32_t line, bool level) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("KVM_IRQ_LINE"); !s) return s;
  kvm_irq_level l{};
  l.irq = line;
  l.level = level ? 1 : 0;
  return ioctl_->IrqLine(vm_fd_, l);
}

Status KvmIrqLinesCore::Assign(uint32_t line, int event_fd, int resample_fd) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("KVM_IRQFD"); !s) return s;
  kvm_irqfd a{};
  a.fd = static_cast<uint32_t>(event_fd);
  a.gsi = line;
  if (resample_fd >= 0) {
    a.flags = KVM_IRQFD_FLAG_RESAMPLE;
    a.resamplefd = static_cast<uint32_t>(resample_fd);
  }
  return ioctl_->Irqfd(vm_fd_, a);
}

Status KvmIrqLinesCore::Deassign(uint32_t line, int event_fd) {
  std::lock_guard lock(mu_);
  if (Status s = CheckAlive("KVM_IRQFD"); !s) return s;
  kvm_irqfd d{};
  d.fd = static_cast<uint32_t>(event_fd);
  d.gsi = line;
  d.flags = KVM_IRQFD_FLAG_DEASSIGN;
  return ioctl_->Irqfd(vm_fd_, d);
}

void KvmIrqLinesCore::Shutdown() {
  std::lock_guard lock(mu_);
  alive_ = false;
}

void KvmIrqLinesCore::SetErrorHandler(IrqLines::ErrorHandler handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

void KvmIrqLinesCore::Report(const Error& error) {
  std::lock_guard lock(mu_);
  if (handler_) {
    handler_(error);
  } else {
    std::fprintf(stderr, "virt: %s\n", error.Message().c_str());
  }
}

KvmIrqLines::KvmIrqLines(std::shared_ptr<KvmIoctl> ioctl, int vm_fd, bool resample)
    : core_(std::make_shared<KvmIrqLinesCore>(std::move(ioctl), vm_fd, resample)) {}

KvmIrqLines::~KvmIrqLines() { core_->Shutdown(); }

Status KvmIrqLines::SetLevel(uint32_t line, bool level) {
  if (Status s = CheckLine("KVM_IRQ_LINE", line); !s) return s;
  return core_->SetLevel(line, level);
}

Result<std::unique_ptr<IrqLineRoute>> KvmIrqLines::NewLineRoute(uint32_t line,
                                                                LineTrigger trigger) {
  if (Status s = CheckLine("IrqLines::NewLineRoute", line); !s) return s.error();
  const bool resample = trigger == LineTrigger::kLevelResample;
  if (resample && !core_->resample_supported()) {
    return Error::Make(ErrorCode::kUnavailable, "IrqLines::NewLineRoute",
                       "level routes need KVM_CAP_IRQFD_RESAMPLE, which this host lacks");
  }
  auto event = Event::Create();
  if (!event) return event.error();
  Event resample_event;
  if (resample) {
    auto r = Event::Create();
    if (!r) return r.error();
    resample_event = std::move(*r);
  }
  // The events close on every early return, which is all a failed assign leaves to undo.
  if (Status s = core_->Assign(line, event->native_handle(),
                               resample ? resample_event.native_handle() : -1);
      !s) {
    return s.error();
  }
  return std::unique_ptr<IrqLineRoute>(std::make_unique<KvmIrqLineRoute>(
      core_, line, trigger, std::move(*event), std::move(resample_event)));
}

void KvmIrqLines::SetErrorHandler(ErrorHandler handler) {
  core_->SetErrorHandler(std::move(handler));
}

void KvmIrqLines::Shutdown() { core_->Shutdown(); }

}  // namespace virt::kvm
