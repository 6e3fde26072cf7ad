// Checks Event sinks (Event::CreateWithSink/SetSink/ClearSink): redirection, hand-over of a
// pending count, failure rollback, and no signal lost or duplicated while sinks come and go.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "virt/event.h"

namespace virt {
namespace {

using namespace std::chrono_literals;

Event MustCreateWithSink() {
  auto event = Event::CreateWithSink();
  EXPECT_TRUE(event.has_value()) << (event ? "" : event.error().Message());
  return event ? std::move(event).value() : Event();
}

uint64_t Drain(const Event& event) {
  auto drained = event.TryWait();
  EXPECT_TRUE(drained.has_value()) << (drained ? "" : drained.error().Message());
  return drained ? *drained : 0;
}

// Records what a sink received.
struct Recorder {
  std::mutex mu;
  std::vector<uint64_t> counts;
  Event::Sink Sink() {
    return [this](uint64_t count) -> Status {
      std::lock_guard lock(mu);
      counts.push_back(count);
      return Ok();
    };
  }
};

TEST(EventSinkTest, SignalsGoToTheSinkAndLeaveTheCounterAlone) {
  Event event = MustCreateWithSink();
  Recorder recorder;
  ASSERT_TRUE(event.SetSink(recorder.Sink()).has_value());
  ASSERT_TRUE(event.Signal(3).has_value());
  ASSERT_TRUE(event.Signal().has_value());
  EXPECT_EQ(recorder.counts, (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(Drain(event), 0u);
}

TEST(EventSinkTest, APendingCountIsHandedToTheSinkOnceWhenItIsSet) {
  Event event = MustCreateWithSink();
  ASSERT_TRUE(event.Signal(2).has_value());
  ASSERT_TRUE(event.Signal(5).has_value());
  Recorder recorder;
  ASSERT_TRUE(event.SetSink(recorder.Sink()).has_value());
  EXPECT_EQ(recorder.counts, (std::vector<uint64_t>{7}));
  EXPECT_EQ(Drain(event), 0u);
}

TEST(EventSinkTest, NothingPendingMeansTheSinkIsNotCalledWhenSet) {
  Event event = MustCreateWithSink();
  Recorder recorder;
  ASSERT_TRUE(event.SetSink(recorder.Sink()).has_value());
  EXPECT_TRUE(recorder.counts.empty());
}

TEST(EventSinkTest, AFailingHandOverPutsTheCountBackAndSetsNoSink) {
  Event event = MustCreateWithSink();
  ASSERT_TRUE(event.Signal(4).has_value());
  int calls = 0;
  auto set = event.SetSink([&calls](uint64_t) -> Status {
    ++calls;
    return Error::Make(ErrorCode::kNative, "SetEvent", "refused");
  });
  ASSERT_FALSE(set.has_value());
  EXPECT_STREQ(set.error().operation, "SetEvent");
  EXPECT_EQ(calls, 1);
  // No sink: the next signal is counted, on top of the restored 4.
  ASSERT_TRUE(event.Signal().has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(Drain(event), 5u);
}

TEST(EventSinkTest, ASinkErrorIsReturnedBySignal) {
  Event event = MustCreateWithSink();
  ASSERT_TRUE(event
                  .SetSink([](uint64_t) -> Status {
                    return Error::Make(ErrorCode::kPartitionGone, "WHvTrigger");
                  })
                  .has_value());
  auto signal = event.Signal();
  ASSERT_FALSE(signal.has_value());
  EXPECT_EQ(signal.error().code, ErrorCode::kPartitionGone);
}

TEST(EventSinkTest, ClearSinkSendsSignalsBackToTheCounter) {
  Event event = MustCreateWithSink();
  Recorder recorder;
  ASSERT_TRUE(event.SetSink(recorder.Sink()).has_value());
  ASSERT_TRUE(event.Signal().has_value());
  event.ClearSink();
  ASSERT_TRUE(event.Signal(6).has_value());
  EXPECT_EQ(recorder.counts, (std::vector<uint64_t>{1}));
  EXPECT_EQ(Drain(event), 6u);
  event.ClearSink();  // a second clear is a no-op
}

TEST(EventSinkTest, ASinkSetTwiceIsReplaced) {
  Event event = MustCreateWithSink();
  Recorder first;
  Recorder second;
  ASSERT_TRUE(event.SetSink(first.Sink()).has_value());
  ASSERT_TRUE(event.SetSink(second.Sink()).has_value());
  ASSERT_TRUE(event.Signal().has_value());
  EXPECT_TRUE(first.counts.empty());
  EXPECT_EQ(second.counts, (std::vector<uint64_t>{1}));
}

TEST(EventSinkTest, BadUsesAreRefused) {
  Event event = MustCreateWithSink();
  auto empty_sink = event.SetSink(nullptr);
  ASSERT_FALSE(empty_sink.has_value());
  EXPECT_EQ(empty_sink.error().code, ErrorCode::kInvalidArgument);

  Event empty;
  auto on_empty = empty.SetSink([](uint64_t) { return Ok(); });
  ASSERT_FALSE(on_empty.has_value());
  EXPECT_EQ(on_empty.error().code, ErrorCode::kFailedPrecondition);
  empty.ClearSink();  // harmless
}

#ifndef _WIN32
TEST(EventSinkTest, APlainLinuxEventHasNoSinkSupport) {
  auto event = Event::Create();
  ASSERT_TRUE(event.has_value());
  auto set = event->SetSink([](uint64_t) { return Ok(); });
  ASSERT_FALSE(set.has_value());
  EXPECT_EQ(set.error().code, ErrorCode::kFailedPrecondition);
}
#endif

TEST(EventSinkTest, MovingTheEventKeepsItsSink) {
  Event event = MustCreateWithSink();
  Recorder recorder;
  ASSERT_TRUE(event.SetSink(recorder.Sink()).has_value());
  Event moved = std::move(event);
  ASSERT_TRUE(moved.Signal(2).has_value());
  EXPECT_EQ(recorder.counts, (std::vector<uint64_t>{2}));
}

// Several threads signal while another switches the sink on and off: every signal is either
// handed to the sink or left on the counter, exactly once.
TEST(EventSinkTest, NoSignalIsLostOrDuplicatedWhileTheSinkComesAndGoes) {
  Event event = MustCreateWithSink();
  std::atomic<uint64_t> sunk{0};
  const auto sink = [&sunk](uint64_t count) -> Status {
    sunk.fetch_add(count, std::memory_order_relaxed);
    return Ok();
  };
  constexpr int kThreads = 3;
  constexpr uint64_t kSignalsPerThread = 20000;
  std::atomic<int> running{kThreads};
  std::vector<std::thread> signallers;
  for (int t = 0; t < kThreads; ++t) {
    signallers.emplace_back([&] {
      for (uint64_t i = 0; i < kSignalsPerThread; ++i) {
        EXPECT_TRUE(event.Signal().has_value());
      }
      running.fetch_sub(1);
    });
  }
  uint64_t drained = 0;
  int switches = 0;
  while (running.load() > 0 || switches < 10) {
    ASSERT_TRUE(event.SetSink(sink).has_value());
    event.ClearSink();
    drained += Drain(event);
    ++switches;
  }
  for (auto& thread : signallers) thread.join();
  drained += Drain(event);
  EXPECT_EQ(sunk.load() + drained, kThreads * kSignalsPerThread);
}

}  // namespace
}  // namespace virt
