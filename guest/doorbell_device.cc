// DoorbellDevice and the doorbell loop of the test guest.
#include "doorbell_device.h"

#include <chrono>

namespace virt::guest {

Result<std::unique_ptr<DoorbellDevice>> DoorbellDevice::Start(const Event& doorbell,
                                                              const Event& msi) {
  auto poller = Poller::Create();
  if (!poller) return poller.error();
  std::unique_ptr<DoorbellDevice> d(new DoorbellDevice(doorbell, msi, std::move(*poller)));
  DoorbellDevice* self = d.get();
  auto id = d->poller_.Add(doorbell, [self] {
    auto n = self->doorbell_.TryWait();
    if (!n) {
      ++self->errors_;
      return;
    }
    self->rings_ += *n;
    for (uint64_t i = 0; i < *n; ++i) {
      if (!self->msi_.Signal()) ++self->errors_;
    }
  });
  if (!id) return id.error();
  d->thread_ = std::thread([self] {
    while (!self->stop_.load()) {
      if (!self->poller_.Wait(std::chrono::milliseconds(-1))) ++self->errors_;
    }
  });
  return d;
}

DoorbellDevice::~DoorbellDevice() { Stop(); }

void DoorbellDevice::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  if (!poller_.Wake()) ++errors_;  // the thread would not wake: counted, then joined anyway
  thread_.join();
}

Result<DoorbellLoopResult> RunDoorbellLoop(GuestDriver& driver, uint32_t rings,
                                           UserModeDoorbells* user_mode) {
  DoorbellLoopResult r;
  auto exit = driver.RunToEvent();
  if (!exit) return exit.error();
  const auto* count = std::get_if<IoExit>(&*exit);
  if (count == nullptr || count->is_write || count->port != kCountPort) {
    return Error::Make(ErrorCode::kFailedPrecondition, "RunDoorbellLoop",
                       "expected the count IN, got " + Describe(*exit));
  }
  const uint8_t n[4] = {static_cast<uint8_t>(rings), static_cast<uint8_t>(rings >> 8),
                        static_cast<uint8_t>(rings >> 16), static_cast<uint8_t>(rings >> 24)};
  if (Status s = driver.vcpu().CompleteIoIn(n); !s) return s.error();
  for (;;) {
    auto e = driver.vcpu().Run();
    if (!e) return e.error();
    if (const auto* io = std::get_if<IoExit>(&*e); io && io->is_write && io->port == kVectorPort) {
      r.guest_interrupts = io->value();
      return r;
    }
    ++r.exits;
    if (user_mode != nullptr && user_mode->Dispatch(*e)) {
      ++r.doorbell_exits;
      continue;
    }
    return Error::Make(ErrorCode::kFailedPrecondition, "RunDoorbellLoop",
                       "unexpected exit in the doorbell loop: " + Describe(*e));
  }
}

}  // namespace virt::guest
