// DoorbellDevice: the device half of the test guest's doorbell loop (a Poller thread that answers
// each ring with one signal of an MSI event), and the vCPU half that runs the loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>

#include "guest_driver.h"
#include "virt/poller.h"
#include "virt/user_mode_doorbells.h"

namespace virt::guest {

// Waits on `doorbell` with a Poller on its own thread; every ring drained is answered with one
// Signal of `msi` (an IrqFdRoute's event). Both events must outlive the device.
class DoorbellDevice {
 public:
  // Starts the thread (Poller::Create + Add).
  static Result<std::unique_ptr<DoorbellDevice>> Start(const Event& doorbell, const Event& msi);
  // Stop.
  ~DoorbellDevice();

  // Wakes the thread and joins it; idempotent.
  void Stop();

  uint64_t rings() const { return rings_.load(); }
  // Signals of `msi` or poller waits that failed.
  uint64_t errors() const { return errors_.load(); }

 private:
  DoorbellDevice(const Event& doorbell, const Event& msi, Poller poller)
      : doorbell_(doorbell), msi_(msi), poller_(std::move(poller)) {}

  const Event& doorbell_;
  const Event& msi_;
  Poller poller_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> rings_{0};
  std::atomic<uint64_t> errors_{0};
};

struct DoorbellLoopResult {
  uint32_t guest_interrupts = 0;  // what the guest reported at the end
  uint64_t exits = 0;             // exits Run returned during the loop (the final OUT aside)
  uint64_t doorbell_exits = 0;    // of which writes `user_mode` consumed
};

// Runs a kModeDoorbell guest (driver created with that mode) through its loop of `rings`: answers
// the count IN, then runs until the final report. Write exits go to `user_mode` when given
// (the fallback); any other exit fails with kFailedPrecondition naming it.
Result<DoorbellLoopResult> RunDoorbellLoop(GuestDriver& driver, uint32_t rings,
                                           UserModeDoorbells* user_mode);

}  // namespace virt::guest
