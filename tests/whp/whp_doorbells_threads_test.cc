// WHP doorbells under concurrency: device threads register, wait and drop doorbells while the
// guest keeps storing to them, and many threads register and release at once.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "whp_doorbells_fixture.h"

namespace virt::whp::test {
namespace {

using namespace std::chrono_literals;

constexpr int kDevices = 3;
constexpr int kRounds = 40;

uint64_t Address(int device) { return 0xfe000000 + 0x1000 * static_cast<uint64_t>(device); }

// Odd devices match their own number as data (virtio queue style), even ones any value.
DoorbellMatch MatchOf(int device) {
  DoorbellMatch m{DoorbellSpace::kMmio, Address(device), 4, {}};
  if (device % 2 == 1) m.data = static_cast<uint64_t>(device);
  return m;
}

// Each guest store either rang the registration live at that moment (a wake-up its device
// drains) or, with none live, would have exited: per device the rings drained never exceed the
// stores that rang (eventfd counts each; a Windows event coalesces), every round got at least
// one, and a store the data match refuses never rings.
TEST_F(WhpDoorbellsTest, DevicesRegisterAndDropWhileTheGuestStoresToThem) {
  ASSERT_NE(doorbells_, nullptr);
  std::atomic<int> devices_left{kDevices};
  std::atomic<int> failures{0};
  std::array<uint64_t, kDevices> rings{};  // slot t written only by device t until joined
  std::vector<std::thread> devices;
  for (int t = 0; t < kDevices; ++t) {
    devices.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        auto r = doorbells_->Register(MatchOf(t));
        if (!r) {
          ++failures;
          break;
        }
        const Event& event = (*r)->event();
        auto n = event.Wait(10s);  // the guest stores continuously
        if (!n || *n == 0) ++failures;
        if (n) rings[t] += *n;
        if (!(*r)->Release()) ++failures;
        // Rings between the wait and the unregister are still pending on the event.
        if (auto rest = event.TryWait()) rings[t] += *rest;
      }
      --devices_left;
    });
  }
  std::array<uint64_t, kDevices> rang{}, exited{};
  uint64_t stray_rings = 0;
  while (devices_left.load() > 0) {
    for (int t = 0; t < kDevices; ++t) {
      if (fake_.GuestWrite(Address(t), 4, static_cast<uint64_t>(t))) {
        ++rang[t];
      } else {
        ++exited[t];
      }
    }
    if (fake_.GuestWrite(Address(1), 4, 99)) ++stray_rings;  // never device 1's value
    std::this_thread::yield();
  }
  for (auto& d : devices) d.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stray_rings, 0u);
  for (int t = 0; t < kDevices; ++t) {
    SCOPED_TRACE("device " + std::to_string(t));
    EXPECT_GE(rings[t], static_cast<uint64_t>(kRounds));
#ifdef _WIN32
    EXPECT_LE(rings[t], rang[t]);
#else
    EXPECT_EQ(rings[t], rang[t]) << "an eventfd counts every ring";
#endif
  }
  EXPECT_TRUE(fake_.doorbells().empty());
  EXPECT_EQ(TableSize(), 0u);
  EXPECT_EQ(Calls(), static_cast<size_t>(2 * kDevices * kRounds));
}

// Registrations with distinct matches made and dropped from many threads at once: every call
// succeeds, WHP's set ends empty, and each registration cost exactly one register and one
// unregister with the same match data.
TEST_F(WhpDoorbellsTest, ManyThreadsRegisterAndReleaseAtOnce) {
  constexpr int kThreads = 4;
  constexpr int kEach = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const uint64_t address = 0x10000 + 0x100 * static_cast<uint64_t>(t);
        auto r = doorbells_->Register(
            {DoorbellSpace::kMmio, address, 2, static_cast<uint64_t>(i % 3)});
        if (!r || !(*r)->Release()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(fake_.doorbells().empty());
  EXPECT_EQ(TableSize(), 0u);
  const auto calls = fake_.doorbell_calls();
  ASSERT_EQ(calls.size(), static_cast<size_t>(2 * kThreads * kEach));
  size_t registers = 0;
  for (const auto& c : calls) registers += c.registers ? 1 : 0;
  EXPECT_EQ(registers, static_cast<size_t>(kThreads * kEach));
}

// Registrations that collide, made from many threads at once: exactly one of each colliding
// set is live at any moment, so the failures are all kOverlap and WHP never sees a duplicate.
TEST_F(WhpDoorbellsTest, RacingDuplicatesAreRefusedBeforeWhp) {
  constexpr int kThreads = 4;
  constexpr int kEach = 100;
  std::atomic<int> overlaps{0}, other_errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto r = doorbells_->Register({DoorbellSpace::kMmio, 0x20000, 4, 1});
        if (!r) {
          (r.error().code == ErrorCode::kOverlap ? overlaps : other_errors).fetch_add(1);
          continue;
        }
        if (!(*r)->Release()) other_errors.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other_errors.load(), 0) << "WHP never answered a duplicate";
  const auto calls = fake_.doorbell_calls();
  const size_t made = static_cast<size_t>(kThreads * kEach - overlaps.load());
  EXPECT_EQ(calls.size(), 2 * made);
  EXPECT_TRUE(fake_.doorbells().empty());
}

}  // namespace
}  // namespace virt::whp::test
