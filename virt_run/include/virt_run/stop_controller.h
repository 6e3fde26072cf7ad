// StopController: how the run ends: the first verdict wins and every vCPU is then cancelled.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace virt::run {

struct Verdict {
  Verdict() = default;
  // A failure (or timeout): printed on stderr as "virt-run: <reason>".
  Verdict(int status, std::string reason) : status(status), reason(std::move(reason)) {}
  // The guest's own verdict through the debug-exit port: status (code << 1) | 1, not printed.
  static Verdict DebugExit(uint32_t code);

  int status = 0;                           // the process exit status
  std::string reason;                       // one line, without the "virt-run: " prefix
  std::optional<uint32_t> debug_exit_code;  // set only for a debug-exit verdict
  bool print = true;                        // also print the reason on stderr
};

// Thread-safe. vCPU threads, device threads and the timeout all report here.
class StopController {
 public:
  // Called once, by the first Stop, after the verdict is recorded (e.g. cancel every vCPU).
  // Set before any thread may call Stop.
  void SetOnStop(std::function<void()> on_stop) { on_stop_ = std::move(on_stop); }

  // Records `verdict` if none was recorded yet, then runs the stop hook and wakes WaitUntil.
  // Later calls are ignored (returns false).
  bool Stop(Verdict verdict);

  // A debug-exit verdict for `code`.
  bool StopWithDebugExit(uint32_t code);

  bool stopped() const { return stopped_.load(std::memory_order_acquire); }

  // Waits until a verdict is recorded or `deadline` passes (nullopt: no deadline). true when
  // stopped.
  bool WaitUntil(std::optional<std::chrono::steady_clock::time_point> deadline);

  // The recorded verdict (status 0 and an empty reason before any Stop).
  Verdict verdict() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Verdict> verdict_;
  std::atomic<bool> stopped_{false};
  std::function<void()> on_stop_;
};

}  // namespace virt::run
