// Real /dev/kvm snapshot: a 2-vCPU guest counting in memory, taking timer interrupts and holding
// values in xmm1/ymm1 is stopped, saved to bytes, its partition destroyed, and restored into a
// fresh partition where it goes on: counters from where they were, the interrupt left pending
// before the save taken after it, ymm1 intact. And the dirty log of a running guest's writes.
// The vector registers are loaded and checked by the VMM through the vCPU's XSAVE image, not by
// guest code: some KVMs (kvm_pvm) run parts of a guest in their instruction emulator, which
// cannot execute AVX instructions (an internal-error exit).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "guest_memory.h"
#include "real_kvm_test.h"

namespace virt::kvm {
namespace {

using namespace std::chrono_literals;
using KvmRealSnapshotTest = RealKvmTest;

constexpr uint32_t kVcpus = 2;
constexpr uint8_t kPendingVector = 0x41;

// The standard-format XSAVE image: the legacy area's XMM registers at 160, XSTATE_BV at 512, the
// AVX component (upper halves of the YMM registers) at 576; 16 bytes per register.
constexpr size_t kXmm1Offset = 160 + 16;
constexpr size_t kXstateBvOffset = 512;
constexpr size_t kYmm1HighOffset = 576 + 16;

// The 32 bytes of ymm1 vCPU n holds: distinct per vCPU and per byte.
std::array<uint8_t, 32> Ymm1Pattern(uint32_t n) {
  std::array<uint8_t, 32> p{};
  for (size_t j = 0; j < p.size(); ++j) p[j] = static_cast<uint8_t>(0x40 * (n + 1) + j);
  return p;
}

// ymm1 of an XSAVE image: the low half from the legacy area, the high half from the AVX area.
std::array<uint8_t, 32> Ymm1(const std::vector<uint8_t>& xsave) {
  std::array<uint8_t, 32> v{};
  std::memcpy(v.data(), xsave.data() + kXmm1Offset, 16);
  std::memcpy(v.data() + 16, xsave.data() + kYmm1HighOffset, 16);
  return v;
}

// Puts Ymm1Pattern(n) into vCPU n's ymm1 through its XSAVE part, marking SSE and AVX in use.
::testing::AssertionResult LoadYmm1(Vcpu& vcpu, uint32_t n) {
  const VcpuStatePart part[] = {VcpuStatePart::kXsave};
  auto s = vcpu.state()->SaveState(part);
  if (!s) return ::testing::AssertionFailure() << s.error().Message();
  std::vector<uint8_t>& x = *s->xsave;
  if (x.size() < kYmm1HighOffset + 16) return ::testing::AssertionFailure() << "XSAVE too small";
  const auto p = Ymm1Pattern(n);
  std::memcpy(x.data() + kXmm1Offset, p.data(), 16);
  std::memcpy(x.data() + kYmm1HighOffset, p.data() + 16, 16);
  x[kXstateBvOffset] |= 0x7;  // x87, SSE, AVX
  if (Status r = vcpu.state()->RestoreState(*s); !r) {
    return ::testing::AssertionFailure() << r.error().Message();
  }
  return ::testing::AssertionSuccess();
}

uint32_t Word(const guest::GuestMemory& m, uint64_t address, uint32_t n) {
  uint32_t v;
  std::memcpy(&v, m.data() + address + 4 * n, 4);
  return v;
}

// A partition of kVcpus running the kModeSnapshot workload on `memory`, each vCPU on a thread
// that answers the guest's start-up exits and stops on Cancel. `fresh`: the vCPUs start at the
// image's entry (else their state is restored by the caller before Start).
class Machine {
 public:
  static std::unique_ptr<Machine> Create(KvmHypervisor& hv, guest::GuestMemory& memory) {
    auto m = std::unique_ptr<Machine>(new Machine(memory));
    auto p = hv.CreatePartition({.vcpu_count = kVcpus, .irqchip = true, .pit = true});
    EXPECT_TRUE(p) << p.error().Message();
    if (!p) return nullptr;
    m->partition = std::move(*p);
    EXPECT_TRUE(m->partition->MapMemory({0, memory.size(), memory.data(), MemoryFlags::kNone}));
    for (uint32_t i = 0; i < kVcpus; ++i) {
      auto v = m->partition->CreateVcpu(i);
      EXPECT_TRUE(v) << v.error().Message();
      if (!v) return nullptr;
      m->vcpus.push_back(std::move(*v));
    }
    return m;
  }

  // Every vCPU at the image's entry: vCPU 1 is made runnable directly (no INIT/SIPI here).
  ::testing::AssertionResult Boot() {
    for (auto& v : vcpus) {
      if (Status s = guest::Start(*v); !s) return ::testing::AssertionFailure() << s.error().Message();
    }
    if (Status s = vcpus[1]->mp_state()->SetMpState(MpState::kRunnable); !s) {
      return ::testing::AssertionFailure() << s.error().Message();
    }
    for (uint32_t i = 0; i < kVcpus; ++i) {
      if (auto r = LoadYmm1(*vcpus[i], i); !r) return r;
    }
    return ::testing::AssertionSuccess();
  }

  void Start() {
    for (uint32_t i = 0; i < kVcpus; ++i) {
      threads.emplace_back([this, i] { Loop(*vcpus[i], i); });
    }
  }
  void Stop() {
    for (auto& v : vcpus) v->Cancel();
    for (auto& t : threads) t.join();
    threads.clear();
  }

  std::unique_ptr<Partition> partition;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  std::atomic<int> errors{0};

 private:
  explicit Machine(guest::GuestMemory& memory) : memory_(memory) {}

  void Loop(Vcpu& vcpu, uint32_t index) {
    for (;;) {
      auto exit = vcpu.Run();
      if (!exit) {
        ++errors;
        ADD_FAILURE() << "vCPU " << index << ": " << exit.error().Message();
        return;
      }
      if (std::holds_alternative<CancelledExit>(*exit)) return;
      const auto* io = std::get_if<IoExit>(&*exit);
      const auto* mmio = std::get_if<MmioExit>(&*exit);
      if (io && !io->is_write && (io->port == guest::kModePort || io->port == guest::kIdPort)) {
        const uint32_t v = io->port == guest::kModePort ? guest::kModeSnapshot : index;
        const uint8_t b[4] = {static_cast<uint8_t>(v), 0, 0, 0};
        if (!vcpu.CompleteIoIn(b)) ++errors;
      } else if (mmio && !mmio->is_write) {
        if (!vcpu.CompleteMmioRead(0)) ++errors;
      } else if (io && io->is_write && io->port == guest::kReadyPort) {
        ++ready;
      } else if (io && io->is_write &&
                 (io->port == guest::kHelloPort || io->port == guest::kEchoPort)) {
        // start-up chatter
      } else {
        ++errors;
        auto regs = vcpu.GetRegisters();
        ADD_FAILURE() << "vCPU " << index << ": unexpected " << guest::Describe(*exit)
                      << " at rip " << std::hex << (regs ? regs->rip : 0) << std::dec
                      << " (ready " << ready << ")";
        return;
      }
    }
  }
  guest::GuestMemory& memory_;
};

// Polls guest memory until `done` holds or 20 s pass (the guest's progress, not a fixed delay).
template <typename Done>
bool WaitFor(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST_F(KvmRealSnapshotTest, ARunningTwoVcpuGuestContinuesInAFreshPartition) {
  auto memory = guest::GuestMemory::Allocate(guest::kMemorySize);
  ASSERT_TRUE(memory) << memory.error().Message();
  ASSERT_TRUE(guest::Load(memory->span()));
  std::vector<uint8_t> vcpu_bytes[kVcpus];
  std::vector<uint8_t> partition_bytes;
  std::vector<uint8_t> saved_memory;
  uint32_t saved_counter[kVcpus];
  uint32_t saved_ticks[kVcpus];
  {
    auto m = Machine::Create(*hypervisor_, *memory);
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->Boot());
    m->Start();
    const bool ran = WaitFor([&] {
      return m->ready == 2 && Word(*memory, guest::kCountersAddress, 0) > 100000 &&
             Word(*memory, guest::kCountersAddress, 1) > 100000 &&
             Word(*memory, guest::kTicksAddress, 0) > 3 && Word(*memory, guest::kTicksAddress, 1) > 3;
    });
    m->Stop();
    ASSERT_TRUE(ran) << "counters " << Word(*memory, guest::kCountersAddress, 0) << "/"
                     << Word(*memory, guest::kCountersAddress, 1) << ", ticks "
                     << Word(*memory, guest::kTicksAddress, 0) << "/"
                     << Word(*memory, guest::kTicksAddress, 1);
    ASSERT_EQ(m->errors, 0);
    // While nothing runs: an interrupt is left pending for vCPU 0, then everything is saved.
    auto sent = m->partition->RequestMsi(MsiMessage::Fixed(0, kPendingVector));
    ASSERT_TRUE(sent && *sent);
    for (uint32_t i = 0; i < kVcpus; ++i) {
      auto s = m->vcpus[i]->state()->SaveState();
      ASSERT_TRUE(s) << s.error().Message();
      vcpu_bytes[i] = SerializeVcpuState(*s);
      saved_counter[i] = Word(*memory, guest::kCountersAddress, i);
      saved_ticks[i] = Word(*memory, guest::kTicksAddress, i);
    }
    auto p = m->partition->state()->SaveState();
    ASSERT_TRUE(p) << p.error().Message();
    partition_bytes = SerializePartitionState(*p);
    saved_memory.assign(memory->data(), memory->data() + memory->size());
    EXPECT_EQ(Word(*memory, guest::kTakenAddress, 0), 0u) << "taken before the save";
  }  // the partition is gone

  auto copy = guest::GuestMemory::Allocate(guest::kMemorySize);
  ASSERT_TRUE(copy);
  std::memcpy(copy->data(), saved_memory.data(), saved_memory.size());
  auto m = Machine::Create(*hypervisor_, *copy);
  ASSERT_NE(m, nullptr);
  auto pstate = ParsePartitionState(partition_bytes, "kvm");
  ASSERT_TRUE(pstate) << pstate.error().Message();
  auto routes = m->partition->state()->RestoreState(*pstate);
  ASSERT_TRUE(routes) << routes.error().Message();
  for (uint32_t i = 0; i < kVcpus; ++i) {
    auto s = ParseVcpuState(vcpu_bytes[i], "kvm");
    ASSERT_TRUE(s) << s.error().Message();
    auto r = m->vcpus[i]->state()->RestoreState(*s);
    ASSERT_TRUE(r) << "vCPU " << i << ": " << r.error().Message();
  }
  m->Start();
  const bool continued = WaitFor([&] {
    return Word(*copy, guest::kCountersAddress, 0) > saved_counter[0] + 100000 &&
           Word(*copy, guest::kCountersAddress, 1) > saved_counter[1] + 100000 &&
           Word(*copy, guest::kTicksAddress, 0) > saved_ticks[0] + 2 &&
           Word(*copy, guest::kTicksAddress, 1) > saved_ticks[1] + 2 &&
           Word(*copy, guest::kTakenAddress, 0) == kPendingVector;
  });
  m->Stop();
  EXPECT_TRUE(continued) << "counters " << saved_counter[0] << " -> "
                         << Word(*copy, guest::kCountersAddress, 0) << ", " << saved_counter[1]
                         << " -> " << Word(*copy, guest::kCountersAddress, 1) << "; ticks "
                         << saved_ticks[0] << " -> " << Word(*copy, guest::kTicksAddress, 0)
                         << "; vector taken " << Word(*copy, guest::kTakenAddress, 0);
  EXPECT_EQ(m->ready, 0) << "the guest started over instead of continuing";
  EXPECT_EQ(m->errors, 0);
  EXPECT_EQ(Word(*copy, guest::kTakenAddress, 1), 0u) << "the interrupt went to the wrong vCPU";
  // The vector registers the guest held went through the bytes and on running.
  const VcpuStatePart xsave[] = {VcpuStatePart::kXsave};
  for (uint32_t i = 0; i < kVcpus; ++i) {
    auto s = m->vcpus[i]->state()->SaveState(xsave);
    ASSERT_TRUE(s) << s.error().Message();
    EXPECT_EQ(Ymm1(*s->xsave), Ymm1Pattern(i)) << "vCPU " << i << ": ymm1 lost its value";
  }
}

TEST_F(KvmRealSnapshotTest, TheDirtyLogShowsExactlyThePagesTheGuestWrote) {
  // The guest's own writes (its counters, stack, IDT) are noise here; the test writes known
  // pages of a second, dirty-logged region through a vCPU-free path: the guest memory is the
  // host's, so host writes do not dirty KVM's log. The guest itself must write: run the
  // snapshot workload, whose writes land in pages 0x6000 (counters) and the stacks below 0x9000.
  auto memory = guest::GuestMemory::Allocate(guest::kMemorySize);
  ASSERT_TRUE(memory);
  ASSERT_TRUE(guest::Load(memory->span()));
  auto p = hypervisor_->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(p) << p.error().Message();
  ASSERT_TRUE((*p)->MapMemory({0, guest::kMemorySize, memory->data(), MemoryFlags::kDirtyLog}));
  DirtyLog* log = (*p)->dirty_log();
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Enable());
  auto initial = log->ReadAndClear(0, guest::kMemorySize);
  ASSERT_TRUE(initial) << initial.error().Message();
  auto vcpu = (*p)->CreateVcpu(0);
  ASSERT_TRUE(vcpu);
  ASSERT_TRUE(guest::Start(**vcpu));
  std::atomic<bool> stop{false};
  std::thread runner([&] {
    while (!stop) {
      auto exit = (*vcpu)->Run();
      if (!exit || std::holds_alternative<CancelledExit>(*exit)) return;
      if (const auto* io = std::get_if<IoExit>(&*exit); io && !io->is_write) {
        const uint32_t v = io->port == guest::kModePort ? guest::kModeSnapshot : 0;
        const uint8_t b[4] = {static_cast<uint8_t>(v), 0, 0, 0};
        (void)(*vcpu)->CompleteIoIn(b);
      } else if (const auto* m = std::get_if<MmioExit>(&*exit); m && !m->is_write) {
        (void)(*vcpu)->CompleteMmioRead(0);
      }
    }
  });
  ASSERT_TRUE(WaitFor([&] { return Word(*memory, guest::kTicksAddress, 0) > 2; }));
  (*vcpu)->Cancel();
  stop = true;
  runner.join();
  // What the guest wrote since tracking began: the IDT (0x3000), its data page (0x6000) and its
  // stack page (0x8000: the stack top is 0x9000). Nothing else.
  auto first = log->ReadAndClear(0, guest::kMemorySize);
  ASSERT_TRUE(first) << first.error().Message();
  std::vector<uint64_t> pages;
  for (uint64_t i = 0; i < guest::kMemorySize / 4096; ++i) {
    if (((*first)[i / 64] >> (i % 64)) & 1) pages.push_back(i * 4096);
  }
  EXPECT_EQ(pages, (std::vector<uint64_t>{0x3000, 0x6000, 0x8000}));
  // A second round: the guest goes on counting (page 0x6000) and taking interrupts (its stack);
  // the IDT is not written again.
  stop = false;
  std::thread again([&] {
    for (;;) {
      auto exit = (*vcpu)->Run();
      if (!exit || std::holds_alternative<CancelledExit>(*exit)) return;
    }
  });
  const uint32_t ticks = Word(*memory, guest::kTicksAddress, 0);
  ASSERT_TRUE(WaitFor([&] { return Word(*memory, guest::kTicksAddress, 0) > ticks + 2; }));
  (*vcpu)->Cancel();
  again.join();
  auto second = log->ReadAndClear(0, guest::kMemorySize);
  ASSERT_TRUE(second);
  pages.clear();
  for (uint64_t i = 0; i < guest::kMemorySize / 4096; ++i) {
    if (((*second)[i / 64] >> (i % 64)) & 1) pages.push_back(i * 4096);
  }
  EXPECT_EQ(pages, (std::vector<uint64_t>{0x6000, 0x8000}));
}

}  // namespace
}  // namespace virt::kvm
