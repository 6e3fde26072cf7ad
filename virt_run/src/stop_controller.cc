// StopController: first verdict wins; waking the main thread and cancelling the vCPUs.
#include "virt_run/stop_controller.h"

#include <cstdio>

#include "virt_run/exit_status.h"

namespace virt::run {

bool StopController::Stop(Verdict verdict) {
  {
    std::lock_guard lock(mu_);
    if (verdict_) return false;
    verdict_ = std::move(verdict);
    stopped_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  if (on_stop_) on_stop_();
  return true;
}

Verdict Verdict::DebugExit(uint32_t code) {
  char reason[80];
  std::snprintf(reason, sizeof reason, "the guest wrote %u to the debug-exit port 0xf4", code);
  Verdict v(DebugExitStatus(code), reason);
  v.debug_exit_code = code;
  v.print = false;
  return v;
}

bool StopController::StopWithDebugExit(uint32_t code) { return Stop(Verdict::DebugExit(code)); }

bool StopController::WaitUntil(std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock lock(mu_);
  if (!deadline) {
    cv_.wait(lock, [this] { return verdict_.has_value(); });
    return true;
  }
  return cv_.wait_until(lock, *deadline, [this] { return verdict_.has_value(); });
}

Verdict StopController::verdict() const {
  std::lock_guard lock(mu_);
  return verdict_ ? *verdict_ : Verdict{};
}

}  // namespace virt::run
