// Checks Poller: callbacks for signalled events, level-triggered reports, Wake, add/remove while waiting, the removal guarantee, many watches, stress (Linux and Windows).
#include "virt/poller.h"

#include <gtest/gtest.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <cerrno>
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>
#include <vector>

namespace virt {
namespace {

using namespace std::chrono_literals;

static_assert(!std::is_copy_constructible_v<Poller>);
static_assert(std::is_nothrow_move_constructible_v<Poller>);
static_assert(std::is_nothrow_destructible_v<Poller>);

constexpr auto kPollGuard = 10s;  // failure guard for waits that must succeed

Event NewEvent() {
  auto event = Event::Create();
  EXPECT_TRUE(event) << event.error().Message();
  return event ? std::move(*event) : Event();
}

Poller NewPoller() {
  auto poller = Poller::Create();
  EXPECT_TRUE(poller) << poller.error().Message();
  return std::move(*poller);
}

// Runs Wait(forever) on `threads` threads until destroyed. A wake ends one Wait; each exiting
// thread wakes again, so all of them stop.
class WaitLoop {
 public:
  explicit WaitLoop(Poller& poller, int threads = 1) : poller_(poller) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        while (!stop_.load()) {
          auto ran = poller_.Wait(-1ms);
          if (!ran) ADD_FAILURE() << ran.error().Message();
        }
        EXPECT_TRUE(poller_.Wake());
      });
    }
  }
  ~WaitLoop() {
    stop_.store(true);
    EXPECT_TRUE(poller_.Wake());
    for (std::thread& thread : threads_) thread.join();
  }

 private:
  Poller& poller_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// A counter the tests wait on: Add from callbacks, WaitFor from the test thread.
class Counter {
 public:
  void Add(uint64_t n) {
    std::lock_guard lock(mu_);
    value_ += n;
    cv_.notify_all();
  }
  bool WaitFor(uint64_t at_least) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kPollGuard, [&] { return value_ >= at_least; });
  }
  uint64_t value() {
    std::lock_guard lock(mu_);
    return value_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t value_ = 0;
};

TEST(PollerTest, SignalledEventRunsItsCallbackWhichDrainsTheCoalescedCount) {
  Poller poller = NewPoller();
  Event event = NewEvent();
  uint64_t drained = 0;
  auto id = poller.Add(event, [&] { drained += *event.TryWait(); });
  ASSERT_TRUE(id) << id.error().Message();
  EXPECT_NE(*id, 0u);
  EXPECT_EQ(poller.watch_count(), 1u);

  ASSERT_TRUE(event.Signal());
  ASSERT_TRUE(event.Signal(2));
  auto ran = poller.Wait(kPollGuard);
  ASSERT_TRUE(ran) << ran.error().Message();
  EXPECT_EQ(*ran, 1u);
  EXPECT_EQ(drained, 3u);

  // Drained: the next wait reports nothing.
  auto idle = poller.Wait(0ms);
  ASSERT_TRUE(idle);
  EXPECT_EQ(*idle, 0u);
}

TEST(PollerTest, AnUndrainedEventIsReportedAgain) {
  Poller poller = NewPoller();
  Event event = NewEvent();
  int calls = 0;
  ASSERT_TRUE(poller.Add(event, [&] { ++calls; }));
  ASSERT_TRUE(event.Signal());
  EXPECT_EQ(*poller.Wait(kPollGuard), 1u);
  EXPECT_EQ(*poller.Wait(kPollGuard), 1u);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(*event.TryWait(), 1u);  // the count was left for the owner
}

TEST(PollerTest, RemovedWatchIsNeverReported) {
  Poller poller = NewPoller();
  Event removed = NewEvent();
  Event kept = NewEvent();
  int removed_calls = 0;
  int kept_calls = 0;
  auto removed_id = poller.Add(removed, [&] { ++removed_calls; (void)removed.TryWait(); });
  ASSERT_TRUE(poller.Add(kept, [&] { ++kept_calls; (void)kept.TryWait(); }));
  ASSERT_TRUE(removed_id);
  ASSERT_TRUE(removed.Signal());  // pending when removed
  ASSERT_TRUE(poller.Remove(*removed_id));
  EXPECT_EQ(poller.watch_count(), 1u);
  ASSERT_TRUE(removed.Signal());
  ASSERT_TRUE(kept.Signal());

  EXPECT_EQ(*poller.Wait(kPollGuard), 1u);
  EXPECT_EQ(kept_calls, 1);
  EXPECT_EQ(removed_calls, 0);
  EXPECT_EQ(*removed.TryWait(), 2u);  // nothing drained the removed event

  auto again = poller.Remove(*removed_id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  // The event can be watched again once removed.
  EXPECT_TRUE(poller.Add(removed, [] {}));
}

TEST(PollerTest, RejectsEmptyEventEmptyCallbackAndASecondWatchOfOneEvent) {
  Poller poller = NewPoller();
  Event event = NewEvent();
  auto empty_event = poller.Add(Event(), [] {});
  ASSERT_FALSE(empty_event);
  EXPECT_EQ(empty_event.error().code, ErrorCode::kInvalidArgument);
  auto empty_callback = poller.Add(event, nullptr);
  ASSERT_FALSE(empty_callback);
  EXPECT_EQ(empty_callback.error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(poller.Add(event, [] {}));
  auto twice = poller.Add(event, [] {});
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kNative);
#ifdef _WIN32
  EXPECT_EQ(twice.error().domain, NativeDomain::kHresult);
  EXPECT_EQ(twice.error().native_code,
            static_cast<int64_t>(static_cast<uint32_t>(HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS))));
#else
  EXPECT_EQ(twice.error().domain, NativeDomain::kErrno);
  EXPECT_EQ(twice.error().native_code, EEXIST);
#endif
  EXPECT_EQ(poller.watch_count(), 1u);
}

TEST(PollerTest, WakeEndsAWaitWithoutRunningCallbacks) {
  Poller poller = NewPoller();
  ASSERT_TRUE(poller.Wake());  // before the wait: the next wait returns at once
  auto early = poller.Wait(-1ms);
  ASSERT_TRUE(early);
  EXPECT_EQ(*early, 0u);

  std::thread waker([&] { EXPECT_TRUE(poller.Wake()); });
  auto woken = poller.Wait(-1ms);  // only the wake can end this
  waker.join();
  ASSERT_TRUE(woken);
  EXPECT_EQ(*woken, 0u);
}

TEST(PollerTest, WatchAddedWhileAnotherThreadWaitsIsReported) {
  Poller poller = NewPoller();
  Counter seen;
  std::vector<Event> events;
  for (int i = 0; i < 3; ++i) events.push_back(NewEvent());
  WaitLoop loop(poller);
  for (Event& event : events) {
    ASSERT_TRUE(poller.Add(event, [&seen, &event] { seen.Add(*event.TryWait()); }));
    ASSERT_TRUE(event.Signal());
  }
  EXPECT_TRUE(seen.WaitFor(3));
}

TEST(PollerTest, RemoveWaitsForTheWatchsRunningCallback) {
  Poller poller = NewPoller();
  Event event = NewEvent();
  std::mutex mu;
  std::condition_variable cv;
  bool in_callback = false, remover_started = false, finished = false;
  std::atomic<bool> remove_returned{false};
  bool remove_returned_during_callback = false;
  auto id = poller.Add(event, [&] {
    (void)event.TryWait();
    std::unique_lock lock(mu);
    in_callback = true;
    cv.notify_all();
    cv.wait_for(lock, kPollGuard, [&] { return remover_started; });
    lock.unlock();
    remove_returned_during_callback = remove_returned.load();
    finished = true;  // read by the remover after Remove returns
  });
  ASSERT_TRUE(id);
  ASSERT_TRUE(event.Signal());
  std::thread waiter([&] { EXPECT_EQ(*poller.Wait(kPollGuard), 1u); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kPollGuard, [&] { return in_callback; }));
  }
  std::thread remover([&] {
    {
      std::lock_guard lock(mu);
      remover_started = true;
    }
    cv.notify_all();
    EXPECT_TRUE(poller.Remove(*id));
    remove_returned.store(true);
    EXPECT_TRUE(finished);  // the callback had ended before Remove returned
  });
  remover.join();
  waiter.join();
  EXPECT_FALSE(remove_returned_during_callback);
}

TEST(PollerTest, ACallbackMayRemoveItsOwnWatch) {
  Poller poller = NewPoller();
  Event event = NewEvent();
  int calls = 0;
  Poller::WatchId id = 0;
  auto added = poller.Add(event, [&] {
    ++calls;
    EXPECT_TRUE(poller.Remove(id));  // must not deadlock on its own watch
  });
  ASSERT_TRUE(added);
  id = *added;
  ASSERT_TRUE(event.Signal());  // left undrained: a live watch would be reported again
  EXPECT_EQ(*poller.Wait(kPollGuard), 1u);
  EXPECT_EQ(*poller.Wait(0ms), 0u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(poller.watch_count(), 0u);
}

// A callback that removes its own watch and adds a new one (which may reuse the removed watch's
// storage) neither deadlocks nor hands the new watch the old id or callback.
TEST(PollerTest, ACallbackMayReplaceItsOwnWatch) {
  Poller poller = NewPoller();
  Event first = NewEvent();
  Event second = NewEvent();
  int first_calls = 0, second_calls = 0;
  Poller::WatchId first_id = 0, second_id = 0;
  auto added = poller.Add(first, [&] {
    ++first_calls;
    ASSERT_TRUE(poller.Remove(first_id));
    auto again = poller.Add(second, [&] {
      ++second_calls;
      (void)second.TryWait();
    });
    ASSERT_TRUE(again);
    second_id = *again;
  });
  ASSERT_TRUE(added);
  first_id = *added;
  ASSERT_TRUE(first.Signal());  // left undrained: a live watch would be reported again
  EXPECT_EQ(*poller.Wait(kPollGuard), 1u);
  EXPECT_NE(second_id, first_id);
  EXPECT_EQ(poller.watch_count(), 1u);
  ASSERT_TRUE(second.Signal());
  EXPECT_EQ(*poller.Wait(kPollGuard), 1u);
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(second_calls, 1);
  // The removed id stays unknown even though its storage now serves another watch.
  EXPECT_EQ(poller.Remove(first_id).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(poller.Remove(second_id));
  EXPECT_EQ(poller.watch_count(), 0u);
}

// Ids are never reused: churning one event through many watches gives a new id each time, and
// a removed id is unknown to Remove while a newer watch is live.
TEST(PollerTest, RemovedIdsAreNeverReusedByLaterWatches) {
  Poller poller = NewPoller();
  Event event = NewEvent();
  std::vector<Poller::WatchId> ids;
  for (int i = 0; i < 200; ++i) {
    auto id = poller.Add(event, [] {});
    ASSERT_TRUE(id);
    for (Poller::WatchId old : ids) ASSERT_NE(*id, old);
    if (!ids.empty()) {
      EXPECT_EQ(poller.Remove(ids.back()).error().code, ErrorCode::kNotFound);
    }
    ids.push_back(*id);
    ASSERT_TRUE(poller.Remove(*id));
  }
  EXPECT_EQ(poller.Remove(0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(poller.watch_count(), 0u);
}

TEST(PollerTest, WatchesFarMoreEventsThanAWaitReturns) {
  constexpr int kEvents = 500;  // well past 64 (a WaitForMultipleObjects limit, a Wait batch)
  Poller poller = NewPoller();
  std::vector<Event> events;
  std::vector<int> calls(kEvents, 0);
  for (int i = 0; i < kEvents; ++i) events.push_back(NewEvent());
  for (int i = 0; i < kEvents; ++i) {
    ASSERT_TRUE(poller.Add(events[i], [&, i] { calls[i] += static_cast<int>(*events[i].TryWait()); }));
  }
  for (Event& event : events) ASSERT_TRUE(event.Signal());
  size_t total = 0;
  while (total < kEvents) {
    auto ran = poller.Wait(kPollGuard);
    ASSERT_TRUE(ran);
    ASSERT_GT(*ran, 0u) << "timed out after " << total << " callbacks";
    total += *ran;
  }
  EXPECT_EQ(total, static_cast<size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(calls[i], 1) << "event " << i;
}

// Shape of one stress run.
struct StressShape {
  int events;
  int signallers;
  int signals_each;
  int churners;
  int rounds;
  int waiters;
};

// Several threads signal events while others remove and re-add their watches, and `waiters`
// threads wait. Every signal is delivered (a removed watch's count waits for its re-add), and no
// callback of a watch runs after its Remove returned: each watch carries a generation that its
// churner retires right after Remove, and the callback checks it is still the live one.
void StressNothingLostNothingAfterRemoval(const StressShape& shape) {
  const int events_n = shape.events;
  Poller poller = NewPoller();
  std::vector<Event> events;
  for (int i = 0; i < events_n; ++i) events.push_back(NewEvent());
  std::vector<std::atomic<uint64_t>> live(events_n), sent(events_n), received(events_n);
  std::vector<Poller::WatchId> ids(events_n, 0);  // event i belongs to churner i % churners
  std::atomic<uint64_t> next_generation{1};
  std::atomic<int> violations{0};
  Counter total;

  auto watch = [&](int i) {
    const uint64_t generation = next_generation.fetch_add(1);
    live[i].store(generation);
    auto id = poller.Add(events[i], [&, i, generation] {
      if (live[i].load() != generation) violations.fetch_add(1);
      const uint64_t n = *events[i].TryWait();
      received[i].fetch_add(n);
      total.Add(n);
    });
    ASSERT_TRUE(id) << id.error().Message();
    ids[i] = *id;
  };
  for (int i = 0; i < events_n; ++i) watch(i);

  {
    WaitLoop loop(poller, shape.waiters);
    std::vector<std::thread> threads;
    for (int t = 0; t < shape.signallers; ++t) {
      threads.emplace_back([&, t] {
        std::minstd_rand rng(t + 1);
        for (int k = 0; k < shape.signals_each; ++k) {
          const int i = static_cast<int>(rng() % events_n);
          sent[i].fetch_add(1);
          EXPECT_TRUE(events[i].Signal());
        }
      });
    }
    for (int c = 0; c < shape.churners; ++c) {
      threads.emplace_back([&, c] {
        for (int round = 0; round < shape.rounds; ++round) {
          for (int i = c; i < events_n; i += shape.churners) {
            if (round % 3 == 2 && i % 4 == c % 4) continue;  // leave some watches alone a while
            EXPECT_TRUE(poller.Remove(ids[i]));
            live[i].store(0);  // the removed watch's generation is retired
            watch(i);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();

    uint64_t all_sent = 0;
    for (auto& s : sent) all_sent += s.load();
    EXPECT_TRUE(total.WaitFor(all_sent)) << total.value() << " of " << all_sent << " delivered";
  }
  EXPECT_EQ(violations.load(), 0);
  for (int i = 0; i < events_n; ++i) {
    EXPECT_EQ(received[i].load(), sent[i].load()) << "event " << i;
  }
  EXPECT_EQ(poller.watch_count(), static_cast<size_t>(events_n));
}

TEST(PollerTest, StressNothingLostNothingAfterRemoval) {
  StressNothingLostNothingAfterRemoval({.events = 24, .signallers = 3, .signals_each = 1500,
                                        .churners = 2, .rounds = 150, .waiters = 2});
}

// The same with several times 64 events (Windows thread-pool waits spread them over several wait
// threads) and more of every kind of thread.
TEST(PollerTest, StressManyEventsNothingLostNothingAfterRemoval) {
  StressNothingLostNothingAfterRemoval({.events = 300, .signallers = 4, .signals_each = 2000,
                                        .churners = 3, .rounds = 12, .waiters = 3});
}

// Events closed right after Remove and replaced by new ones (on Windows a new event often gets
// the closed one's HANDLE value): a watch left behind on the old handle would run the old
// callback for the new event, and every new event's signal must reach its own callback.
TEST(PollerTest, EventClosedAfterRemoveAndReplacedIsNeverReportedToTheOldWatch) {
  constexpr int kRounds = 200;
  Poller poller = NewPoller();
  std::atomic<int> current{-1};
  std::atomic<int> violations{0};
  Counter delivered;
  WaitLoop loop(poller);
  for (int round = 0; round < kRounds; ++round) {
    Event event = NewEvent();
    current.store(round);
    auto id = poller.Add(event, [&, round] {
      if (current.load() != round) violations.fetch_add(1);
      delivered.Add(*event.TryWait());
    });
    ASSERT_TRUE(id) << id.error().Message();
    ASSERT_TRUE(event.Signal());
    ASSERT_TRUE(delivered.WaitFor(static_cast<uint64_t>(round) + 1)) << "round " << round;
    ASSERT_TRUE(poller.Remove(*id));
    current.store(-1);
    ASSERT_TRUE(event.Signal());  // pending after the Remove, and closed with the event
  }
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(delivered.value(), static_cast<uint64_t>(kRounds));
  EXPECT_EQ(poller.watch_count(), 0u);
}

}  // namespace
}  // namespace virt
