// LevelIrqDevice: binding a resample route, the condition, and the resample thread.
#include "virt_run/level_irq_device.h"

#include <algorithm>
#include <chrono>

namespace virt::run {

Result<std::unique_ptr<LevelIrqDevice>> LevelIrqDevice::Create(IrqLines& lines,
                                                               OnError on_error) {
  auto poller = Poller::Create();
  if (!poller) return poller.error();
  return std::unique_ptr<LevelIrqDevice>(
      new LevelIrqDevice(lines, std::move(*poller), std::move(on_error)));
}

LevelIrqDevice::~LevelIrqDevice() { Stop(); }

Status LevelIrqDevice::Read(uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (offset == 2 && !data.empty()) {
    std::lock_guard lock(mu_);
    data[0] = resamples_;
  }
  return Ok();
}

Status LevelIrqDevice::Write(uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t value = LittleEndian(data);
  if (offset == 0) return Bind(static_cast<uint32_t>(value));
  if (offset == 1) return SetCondition(value != 0);
  return Ok();
}

Status LevelIrqDevice::Bind(uint32_t line) {
  std::lock_guard bind(bind_mu_);
  if (stopped_ || line >= lines_.line_count()) return Ok();
  Unbind();
  auto route = lines_.NewLineRoute(line, LineTrigger::kLevelResample);
  if (!route) return route.error();
  const Event* resample = (*route)->resample_event();
  if (resample == nullptr) {
    return Error::Make(ErrorCode::kFailedPrecondition, "LevelIrqDevice",
                       "a kLevelResample route without a resample event");
  }
  // The route outlives the watch (Unbind removes the watch first), so the callback may keep a
  // reference to its event.
  auto watch = poller_.Add(*resample, [this, resample] { OnResample(*resample); });
  if (!watch) return watch.error();
  {
    std::lock_guard lock(mu_);
    route_ = std::move(*route);
    watch_ = *watch;
    condition_ = false;
  }
  if (!thread_.joinable()) {
    thread_ = std::thread([this] {
      while (!stopping_.load()) {
        auto ran = poller_.Wait(std::chrono::milliseconds(-1));
        if (!ran) {
          if (on_error_) on_error_(ran.error());
          return;
        }
      }
    });
  }
  return Ok();
}

void LevelIrqDevice::Unbind() {
  std::unique_ptr<IrqLineRoute> old;
  Poller::WatchId watch = 0;
  {
    std::lock_guard lock(mu_);
    old = std::move(route_);
    watch = std::exchange(watch_, 0);
    condition_ = false;
  }
  // Not under mu_: Remove waits for a callback that may be waiting for mu_.
  if (watch != 0) (void)poller_.Remove(watch);
  old.reset();  // detaches the route; a failure goes to the IrqLines error handler
}

Status LevelIrqDevice::SetCondition(bool on) {
  std::lock_guard lock(mu_);
  condition_ = on;
  if (on && route_) return route_->event().Signal();
  return Ok();
}

void LevelIrqDevice::OnResample(const Event& resample_event) {
  (void)resample_event.TryWait();  // several EOIs before we ran count as one notification
  Status resignal = Ok();
  {
    std::lock_guard lock(mu_);
    ++resamples_;
    if (condition_ && route_) resignal = route_->event().Signal();
  }
  if (!resignal && on_error_) on_error_(resignal.error());
}

void LevelIrqDevice::Stop() {
  std::lock_guard bind(bind_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_.store(true);
  if (thread_.joinable()) {
    (void)poller_.Wake();
    thread_.join();
  }
  Unbind();
}

}  // namespace virt::run
