// LevelIrqDevice: the contract's level-interrupt test device (ports 0x2100-0x2102) on a
// kLevelResample line route, with a thread that answers the kernel's resample notifications.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

#include "virt/irq_lines.h"
#include "virt/poller.h"
#include "virt_run/device.h"

namespace virt::run {

// Byte ports:
//   OUT 0x2100 = n: bind to line n (< line_count(); other values are ignored) through a new
//     LineTrigger::kLevelResample route, replacing (and detaching) an earlier one. The
//     condition starts clear.
//   OUT 0x2101 = v: v != 0 sets the condition and signals the route's event (the line stays
//     asserted until the guest's EOI); v == 0 clears it (the guest's "ack").
//   IN 0x2102: how many resample notifications the device has seen, mod 256.
// On each resample (the guest EOI'd the line) the device counts it and, if the condition is
// still set, signals the event again. The notifications are waited for by one thread with a
// Poller, started at the first bind and ended by Stop().
class LevelIrqDevice : public Device {
 public:
  static constexpr uint16_t kBase = 0x2100;
  static constexpr uint16_t kPorts = 3;

  // Receives failures on the resample thread (waiting, re-signalling); the thread stops.
  using OnError = std::function<void(const Error&)>;

  // Poller::Create can fail; nothing else happens until the guest binds a line.
  static Result<std::unique_ptr<LevelIrqDevice>> Create(IrqLines& lines, OnError on_error);
  ~LevelIrqDevice() override;

  LevelIrqDevice(const LevelIrqDevice&) = delete;
  LevelIrqDevice& operator=(const LevelIrqDevice&) = delete;

  Status Read(uint64_t offset, std::span<uint8_t> data) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;

  // Ends the resample thread, then detaches and closes the route (KVM_IRQFD deassign).
  // Idempotent; call it after the vCPUs stopped and before the partition goes.
  void Stop();

 private:
  LevelIrqDevice(IrqLines& lines, Poller poller, OnError on_error)
      : lines_(lines), poller_(std::move(poller)), on_error_(std::move(on_error)) {}

  Status Bind(uint32_t line);
  Status SetCondition(bool on);
  void OnResample(const Event& resample_event);
  // Detaches the current route; caller holds bind_mu_ but not mu_.
  void Unbind();

  IrqLines& lines_;
  Poller poller_;
  OnError on_error_;
  // Serialises Bind, Unbind and Stop. Held across Poller::Remove, which waits for a running
  // callback; the callback takes only mu_, never this one.
  std::mutex bind_mu_;
  std::mutex mu_;  // route_, condition_, resamples_
  std::unique_ptr<IrqLineRoute> route_;
  Poller::WatchId watch_ = 0;
  bool condition_ = false;
  uint8_t resamples_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;  // under bind_mu_
};

}  // namespace virt::run
