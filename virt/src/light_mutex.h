// LightMutex: a mutex whose uncontended lock and unlock are one inline atomic instruction each.
#pragma once

#include <atomic>
#include <cstdint>

namespace virt {

// For a lock taken once or twice per route change while other threads rarely contend (the
// kernel irqfd core's table lock, held across its ioctls). No spin loop of its own: a thread
// that finds the lock held waits in std::atomic::wait (libstdc++: a brief spin, then a futex on
// Linux) until the holder's unlock wakes one waiter. The three states are Drepper's ("Futexes Are Tricky", mutex 2): free, held, held with
// possible sleepers; only an unlock of the last state pays for a wake. std::mutex costs a call
// into pthread_mutex_lock and _unlock (about 55 instructions a pair); this is about 6 inline.
// Meets Lockable (std::lock_guard, std::unique_lock, std::scoped_lock); not recursive.
// Acquire/release ordering on the state word, which TSan sees as the lock's happens-before.
class LightMutex {
 public:
  LightMutex() = default;
  LightMutex(const LightMutex&) = delete;
  LightMutex& operator=(const LightMutex&) = delete;

  void lock() {
    uint32_t expected = kFree;
    if (state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire,
                                       std::memory_order_relaxed)) [[likely]] {
      return;
    }
    LockContended();
  }

  bool try_lock() {
    uint32_t expected = kFree;
    return state_.compare_exchange_strong(expected, kHeld, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() {
    if (state_.exchange(kFree, std::memory_order_release) == kContended) [[unlikely]] {
      WakeOne();
    }
  }

 private:
  static constexpr uint32_t kFree = 0;
  static constexpr uint32_t kHeld = 1;
  static constexpr uint32_t kContended = 2;  // held, and a thread may be asleep on it

  // Marks the lock contended and sleeps until it is free. A thread that takes it here leaves it
  // marked contended (it cannot know whether others still sleep), so its unlock wakes one more:
  // at worst a spurious wake, never a lost one.
  [[gnu::noinline]] void LockContended() {
    while (state_.exchange(kContended, std::memory_order_acquire) != kFree) {
      state_.wait(kContended, std::memory_order_relaxed);
    }
  }

  // Out of line, so that the wake-up's code stays off every locking function's frame.
  [[gnu::noinline]] void WakeOne() { state_.notify_one(); }

  std::atomic<uint32_t> state_{kFree};
};

}  // namespace virt
