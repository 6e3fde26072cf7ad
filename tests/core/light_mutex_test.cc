// LightMutex (the kernel irqfd core's lock): exclusion under contention, try_lock, wake-ups.
#include "light_mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace virt::test {
namespace {

// More threads than this host's cores, each taking the lock many times: the contended path
// (sleep in wait, wake on unlock) runs constantly. A lost wake-up hangs the test; broken
// exclusion shows as two threads inside at once or a lost increment (and, under the tsan
// preset, as a data race on `count`).
TEST(LightMutexTest, ExcludesAndWakesUnderHeavyContention) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 50000;
  LightMutex mu;
  uint64_t count = 0;  // guarded by mu, deliberately not atomic
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // all start together
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard lock(mu);
        if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlapped = true;
        ++count;
        inside.fetch_sub(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_FALSE(overlapped.load());
  EXPECT_EQ(count, uint64_t{kThreads} * kRounds);
}

TEST(LightMutexTest, TryLockFailsWhileHeldAndSucceedsOnceFree) {
  LightMutex mu;
  ASSERT_TRUE(mu.try_lock());
  bool other = true;
  std::thread([&] { other = mu.try_lock(); }).join();
  EXPECT_FALSE(other);
  mu.unlock();
  std::thread([&] {
    other = mu.try_lock();
    if (other) mu.unlock();
  }).join();
  EXPECT_TRUE(other);
}

// A thread blocked in lock() while another holds it gets it after the unlock, and sees what
// the holder wrote (the release/acquire pair).
TEST(LightMutexTest, ABlockedLockerGetsTheLockAndTheHoldersWrites) {
  LightMutex mu;
  int value = 0;  // guarded by mu
  mu.lock();
  std::atomic<bool> started{false};
  int seen = -1;
  std::thread waiter([&] {
    started = true;
    std::lock_guard lock(mu);
    seen = value;
  });
  while (!started.load()) std::this_thread::yield();
  value = 42;
  mu.unlock();
  waiter.join();
  EXPECT_EQ(seen, 42);
}

}  // namespace
}  // namespace virt::test
