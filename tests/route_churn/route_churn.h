// The route-churn stress shared by every backend's suite: threads create, enable, retarget, mask,
// unmask and release IrqFdRoutes (alone and in RouteBatches) while a delivery path takes their MSIs.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "virt/irqfd.h"
#include "virt/irqfd_route.h"
#include "virt/msi_message.h"

namespace virt::test::churn {

// Failure guard for a delivery that must come; never a synchronisation delay.
inline constexpr std::chrono::seconds kDeliveryGuard{20};

// Vector 0x21 is the end-of-run sentinel, owned by no churn thread; thread t owns
// kVectorsPerThread vectors from kFirstVector + t * kVectorsPerThread (16 threads: up to 0xEF).
inline constexpr uint8_t kSentinelVector = 0x21;
inline constexpr uint8_t kFirstVector = 0x30;
inline constexpr int kVectorsPerThread = 12;
inline constexpr int kMaxThreads = (0xF0 - kFirstVector) / kVectorsPerThread;

// What the delivery path (a vCPU taking interrupts, or a simulated kernel) saw: MSIs by vector,
// and anything that was not a fixed-mode MSI to APIC 0. Thread-safe; waiters are woken by Record.
class DeliveryLog {
 public:
  void Record(const MsiMessage& msi) {
    std::lock_guard lock(mu_);
    if (msi.address != 0xFEE00000u || (msi.data & ~0xFFu) != 0) {
      ++malformed_;
    } else {
      ++count_[msi.data & 0xFFu];
    }
    cv_.notify_all();
  }
  // For a path that only knows the vector (a guest's interrupt handler).
  void RecordVector(uint32_t vector) {
    std::lock_guard lock(mu_);
    vector < 256 ? ++count_[vector] : ++malformed_;
    cv_.notify_all();
  }

  // Waits until `vector` was delivered at least `times` times; false on the guard timeout.
  bool WaitFor(uint8_t vector, uint64_t times) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeliveryGuard, [&] { return count_[vector] >= times; });
  }

  // Waits until the vectors [first, first + n) were delivered at least `times` times in all.
  bool WaitForSum(uint8_t first, int n, uint64_t times) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeliveryGuard, [&] {
      uint64_t sum = 0;
      for (int v = first; v < first + n; ++v) sum += count_[v];
      return sum >= times;
    });
  }

  std::array<uint64_t, 256> counts() {
    std::lock_guard lock(mu_);
    return count_;
  }
  uint64_t malformed() {
    std::lock_guard lock(mu_);
    return malformed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::array<uint64_t, 256> count_{};
  uint64_t malformed_ = 0;
};

struct Config {
  int threads = 8;
  int rounds = 20;
};

// Each thread's vectors come in kRouteSlots groups of kSlotVectors, one group per route it can
// hold at once (the single route, then a and b of the batches).
inline constexpr int kRouteSlots = 3;
inline constexpr int kSlotVectors = kVectorsPerThread / kRouteSlots;

// One churn thread: its own vectors, how many MSIs it caused through each slot's routes, and the
// first failure it met (threads never assert fatally; the test reports after joining).
//
// Batches belong to the IrqFd, not to a thread: while any thread holds one open, every route
// change waits for that batch's end. So a signal right after a retarget may still take the old
// vector, and one right after a mask may still be delivered; both vectors are the route's own.
// What must hold is per route: each signal on an enabled route (or held by a mask and then
// unmasked) is delivered exactly once, to one of that route's vectors, and nothing after its
// release. Counting per slot proves exactly that.
class Worker {
 public:
  Worker(IrqFd& irqfd, DeliveryLog& log, int index)
      : irqfd_(irqfd), log_(log), base_(static_cast<uint8_t>(kFirstVector + index * kVectorsPerThread)) {}

  // Each round: a route on its own (enable, signal, retarget, mask with a signal held, unmask
  // to a new vector), then two routes made and changed in RouteBatches, then teardown by
  // Release, by destructor and inside a batch, each followed by a signal on the dead event.
  void Run(int rounds) {
    for (int r = 0; r < rounds && error_.empty(); ++r) Round(r);
  }

  const std::string& error() const { return error_; }
  uint8_t first_vector(int slot) const { return static_cast<uint8_t>(base_ + slot * kSlotVectors); }
  uint64_t expected(int slot) const { return expected_[slot]; }

 private:
  MsiMessage Next(int slot) {
    const int k = static_cast<int>(next_[slot]++ % kSlotVectors);
    return MsiMessage::Fixed(0, static_cast<uint8_t>(first_vector(slot) + k));
  }

  bool Ok(const Status& s, const char* what) {
    if (!s && error_.empty()) error_ = std::string(what) + ": " + s.error().Message();
    return s.has_value();
  }
  bool Check(bool condition, const std::string& what) {
    if (!condition && error_.empty()) error_ = what;
    return condition;
  }
  // The delivery this thread just caused through `slot`'s route must arrive.
  bool Expect(int slot, const char* after) {
    ++expected_[slot];
    return Check(log_.WaitForSum(first_vector(slot), kSlotVectors, before_[slot] + expected_[slot]),
                 "lost an MSI of the route on vectors " + std::to_string(first_vector(slot)) +
                     "+ after " + after);
  }
  bool Signal(IrqFdRoute& route) { return Ok(route.event().Signal(), "Event::Signal"); }

  std::unique_ptr<IrqFdRoute> New() {
    auto r = irqfd_.NewRoute();
    if (!r) {
      Check(false, "NewRoute: " + r.error().Message());
      return nullptr;
    }
    Check(!(*r)->msi().has_value(), "a new route is not masked");
    return std::move(*r);
  }

  void Round(int r) {
    if (r == 0) {
      const std::array<uint64_t, 256> now = log_.counts();
      for (int slot = 0; slot < kRouteSlots; ++slot) {
        for (int v = 0; v < kSlotVectors; ++v) before_[slot] += now[first_vector(slot) + v];
      }
    }
    constexpr int kSingle = 0, kA = 1, kB = 2;
    auto single = New();
    if (!single) return;
    if (!Ok(single->SetMsi(Next(kSingle)), "SetMsi (enable)") || !Signal(*single) ||
        !Expect(kSingle, "enable")) {
      return;
    }
    if (!Ok(single->SetMsi(Next(kSingle)), "SetMsi (retarget)") || !Signal(*single) ||
        !Expect(kSingle, "retarget")) {
      return;
    }
    // Masked: the signal is held on the event and delivered once the route is unmasked.
    if (!Ok(single->ClearMsi(), "ClearMsi") || !Signal(*single)) return;
    if (!Ok(single->SetMsi(Next(kSingle)), "SetMsi (unmask)") ||
        !Expect(kSingle, "unmask with a held signal")) {
      return;
    }

    std::unique_ptr<IrqFdRoute> a, b;
    {
      RouteBatch batch(irqfd_);
      a = New();
      b = New();
      if (!a || !b) return;
      if (!Ok(a->SetMsi(Next(kA)), "SetMsi in a batch") ||
          !Ok(b->SetMsi(Next(kB)), "SetMsi in a batch") ||
          !Ok(batch.Commit(), "RouteBatch::Commit")) {
        return;
      }
    }
    if (!Signal(*a) || !Signal(*b) || !Expect(kA, "a batch enable") ||
        !Expect(kB, "a batch enable")) {
      return;
    }
    {
      RouteBatch batch(irqfd_);
      if (!Ok(a->SetMsi(Next(kA)), "SetMsi (batch retarget)") ||
          !Ok(b->ClearMsi(), "ClearMsi in a batch") || !Ok(batch.Commit(), "RouteBatch::Commit")) {
        return;
      }
    }
    if (!Signal(*a) || !Signal(*b) || !Expect(kA, "a batch retarget")) return;
    if (!Ok(b->SetMsi(Next(kB)), "SetMsi (unmask after a batch mask)") ||
        !Expect(kB, "unmask after a batch mask")) {
      return;
    }

    // Teardown, three ways; a device signalling a dead route's event reaches nobody (the final
    // exact counts would show it).
    if (r % 2 == 0) {
      if (!Ok(single->Release(), "Release")) return;
      Signal(*single);
    }
    single.reset();
    {
      RouteBatch batch(irqfd_);
      a.reset();
      if (!Ok(b->Release(), "Release in a batch")) return;
      if (!Ok(batch.Commit(), "RouteBatch::Commit (drops)")) return;
    }
    Signal(*b);  // after the commit: the release has taken effect
    b.reset();
  }

  IrqFd& irqfd_;
  DeliveryLog& log_;
  const uint8_t base_;
  std::array<uint32_t, kRouteSlots> next_{};
  std::array<uint64_t, kRouteSlots> before_{};
  std::array<uint64_t, kRouteSlots> expected_{};
  std::string error_;
};

// Runs `config.threads` workers at once on `irqfd`, then proves through a sentinel route that
// the delivery path is drained, and that every vector got exactly the MSIs its owner caused:
// none lost, none twice, none to a vector nobody targets, none malformed. The caller checks
// afterwards that GSIs and events came back (ExpectEveryGsiFree and its backend's own tables).
inline void RunRouteChurn(IrqFd& irqfd, DeliveryLog& log, const Config& config) {
  ASSERT_LE(config.threads, kMaxThreads);
  const std::array<uint64_t, 256> before = log.counts();
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < config.threads; ++t) {
    workers.push_back(std::make_unique<Worker>(irqfd, log, t));
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w, &config] { w->Run(config.rounds); });
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < config.threads; ++t) {
    EXPECT_EQ(workers[t]->error(), "") << "thread " << t;
  }

  // Drain: one more MSI through a fresh route, taken after everything signalled before it.
  {
    auto sentinel = irqfd.NewRoute();
    ASSERT_TRUE(sentinel) << sentinel.error().Message();
    ASSERT_TRUE((*sentinel)->SetMsi(MsiMessage::Fixed(0, kSentinelVector)));
    ASSERT_TRUE((*sentinel)->event().Signal());
    ASSERT_TRUE(log.WaitFor(kSentinelVector, before[kSentinelVector] + 1));
  }

  // Per slot: exactly the MSIs its routes were given, on its own vectors. Elsewhere: nothing.
  const std::array<uint64_t, 256> got = log.counts();
  std::array<bool, 256> owned{};
  owned[kSentinelVector] = true;
  EXPECT_EQ(got[kSentinelVector], before[kSentinelVector] + 1);
  uint64_t total = 0;
  for (int t = 0; t < config.threads; ++t) {
    for (int slot = 0; slot < kRouteSlots; ++slot) {
      uint64_t delivered = 0;
      for (int k = 0; k < kSlotVectors; ++k) {
        const int v = workers[t]->first_vector(slot) + k;
        owned[v] = true;
        delivered += got[v] - before[v];
      }
      EXPECT_EQ(delivered, workers[t]->expected(slot))
          << "thread " << t << ", the route on vectors " << int(workers[t]->first_vector(slot))
          << "+: " << (delivered > workers[t]->expected(slot) ? "duplicated" : "lost");
      total += workers[t]->expected(slot);
    }
  }
  for (int v = 0; v < 256; ++v) {
    if (!owned[v]) {
      EXPECT_EQ(got[v], before[v]) << "vector " << v << ", which nobody targets";
    }
  }
  EXPECT_EQ(log.malformed(), 0u);
  EXPECT_EQ(total, uint64_t(config.threads) * config.rounds * 7) << "every step ran";
}

// How many new routes fit before kExhausted (all dropped again): the same before and after a
// churn when every GSI came back.
inline size_t CountFreeGsis(IrqFd& irqfd, size_t limit = 1 << 16) {
  std::vector<std::unique_ptr<IrqFdRoute>> all;
  while (all.size() < limit) {
    auto r = irqfd.NewRoute();
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kExhausted) << r.error().Message();
      break;
    }
    all.push_back(std::move(*r));
  }
  return all.size();
}

// Every GSI is free again: exactly `usable` new routes fit, and one more is kExhausted.
inline void ExpectEveryGsiFree(IrqFd& irqfd, size_t usable) {
  std::vector<std::unique_ptr<IrqFdRoute>> all;
  all.reserve(usable);
  for (size_t i = 0; i < usable; ++i) {
    auto r = irqfd.NewRoute();
    ASSERT_TRUE(r) << "route " << i << " of " << usable << ": " << r.error().Message();
    all.push_back(std::move(*r));
  }
  auto extra = irqfd.NewRoute();
  ASSERT_FALSE(extra) << "more GSIs than the table has";
  EXPECT_EQ(extra.error().code, ErrorCode::kExhausted);
}

}  // namespace virt::test::churn
