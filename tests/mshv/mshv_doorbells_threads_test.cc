// MSHV doorbells under concurrency: device threads register, wait and drop doorbells while a
// vCPU runs on the fake and its guest keeps storing to their registers.
#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "mshv_test_fixture.h"

namespace virt::mshv::test {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;
using namespace std::chrono_literals;

constexpr int kDevices = 3;
constexpr int kRounds = 40;
constexpr uint64_t kStrayValue = 99;  // never the data match of device 1

uint64_t Address(int device) { return 0xfe000000 + 0x1000 * static_cast<uint64_t>(device); }

// Odd devices match their own number as data (virtio queue style), even ones any value.
DoorbellMatch MatchOf(int device) {
  DoorbellMatch m{DoorbellSpace::kMmio, Address(device), 4, {}};
  if (device % 2 == 1) m.data = static_cast<uint64_t>(device);
  return m;
}

class MshvDoorbellThreadsTest : public MshvTest {};

// Each store either rang the registration live at that moment (counted by its device) or, with
// none live, left MSHV_RUN_VP as an MMIO exit (counted by the vCPU): per device the two add up
// to the stores made, nothing is lost or doubled, and every round got its ring.
TEST_F(MshvDoorbellThreadsTest, DevicesRegisterAndDropWhileAVcpuStoresToThem) {
  SetUpVcpu();
  Doorbells* doorbells = partition_->doorbells();
  ASSERT_NE(doorbells, nullptr);

  std::array<uint64_t, kDevices> stores{}, exits{};
  uint64_t batches = 0, stray_exits = 0;
  int bad_exits = 0;
  // One store per device (and a stray one), then HLT; Run until the HLT, sorting the exits.
  auto run_batch = [&] {
    std::vector<GuestWrite> batch;
    for (int t = 0; t < kDevices; ++t) batch.push_back({Address(t), 4, static_cast<uint64_t>(t)});
    batch.push_back({Address(1), 4, kStrayValue});
    fake_.QueueGuestWrites(0, batch);
    fake_.QueueMessage(0, PlainMessage(HVMSG_X64_HALT, 40));
    for (int t = 0; t < kDevices; ++t) ++stores[t];
    ++batches;
    for (;;) {
      auto exit = vcpu_->Run();
      if (!exit) {
        ADD_FAILURE() << exit.error().Message();
        ++bad_exits;
        return;
      }
      if (std::holds_alternative<HaltExit>(*exit)) return;
      const auto* mmio = std::get_if<MmioExit>(&*exit);
      if (mmio == nullptr || !mmio->is_write || mmio->size != 4 ||
          (mmio->address - Address(0)) % 0x1000 != 0 || mmio->address > Address(kDevices - 1)) {
        ++bad_exits;
        return;
      }
      const int t = static_cast<int>((mmio->address - Address(0)) / 0x1000);
      if (mmio->value == kStrayValue && t == 1) {
        ++stray_exits;
      } else if (mmio->value == static_cast<uint64_t>(t)) {
        ++exits[t];
      } else {
        ++bad_exits;
      }
    }
  };
  // Before any device registers, every store is an exit.
  run_batch();
  for (int t = 0; t < kDevices; ++t) EXPECT_EQ(exits[t], 1u) << "device " << t;

  std::atomic<int> devices_left{kDevices};
  std::atomic<int> failures{0};
  std::array<uint64_t, kDevices> rings{};  // slot t written only by device t until joined
  std::vector<std::thread> devices;
  for (int t = 0; t < kDevices; ++t) {
    devices.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        auto r = doorbells->Register(MatchOf(t));
        if (!r) {
          ++failures;
          break;
        }
        const Event& event = (*r)->event();
        auto n = event.Wait(10s);  // a store comes with every vCPU batch
        if (!n || *n == 0) ++failures;
        if (n) rings[t] += *n;
        if (!(*r)->Release()) ++failures;
        // Rings between the wait and the deassign are on the counter still.
        if (auto rest = event.TryWait()) rings[t] += *rest;
      }
      --devices_left;
    });
  }
  while (devices_left.load() > 0 && bad_exits == 0) run_batch();
  for (auto& d : devices) d.join();

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad_exits, 0);
  EXPECT_EQ(stray_exits, batches) << "a store the data match refuses always exits";
  for (int t = 0; t < kDevices; ++t) {
    SCOPED_TRACE("device " + std::to_string(t));
    EXPECT_EQ(rings[t] + exits[t], stores[t]);
    EXPECT_GE(rings[t], static_cast<uint64_t>(kRounds));
  }
  EXPECT_THAT(fake_.only_partition().ioeventfds, IsEmpty());
  EXPECT_THAT(fake_.ioeventfd_calls(), SizeIs(2 * kDevices * kRounds));
}

// Registrations with distinct matches made and dropped from many threads at once: every call
// succeeds, the kernel set ends empty and each registration cost exactly assign + deassign.
TEST_F(MshvDoorbellThreadsTest, ManyThreadsRegisterAndReleaseAtOnce) {
  hypervisor_ = OpenHypervisor();
  partition_ = NewPartition(*hypervisor_, PartitionConfig{1, true});
  Doorbells* doorbells = partition_->doorbells();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const uint64_t address = 0x10000 + 0x100 * static_cast<uint64_t>(t);
        auto r = doorbells->Register(
            {DoorbellSpace::kMmio, address, 2, static_cast<uint64_t>(i % 3)});
        if (!r || !(*r)->Release()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(fake_.only_partition().ioeventfds, IsEmpty());
  EXPECT_THAT(fake_.ioeventfd_calls(), SizeIs(800));
}

}  // namespace
}  // namespace virt::mshv::test
