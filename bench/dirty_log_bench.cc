// dirty_bitmap_1g: reading (and clearing) the dirty bitmap of a 1 GiB slot, raw vs the library.
//
// Both sides map 1 GiB of anonymous memory at kDirtyBase with dirty logging (raw:
// KVM_MEM_LOG_DIRTY_PAGES; library: MemoryFlags::kDirtyLog) on a VM with the same manual
// dirty-log protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 when the host has it, as
// KvmHypervisor::CreatePartition enables it), and run the kModeDirtyPages guest, which writes
// the same kDirtyPages pages (one per MiB) every round. An iteration is one round of the guest
// (not timed) and one timed read of the whole slot: raw KVM_GET_DIRTY_LOG, then
// KVM_CLEAR_DIRTY_LOG of the bits it returned (what the library's read does with manual
// protection); library DirtyLog::ReadAndClear(kDirtyBase, 1 GiB). Each read must show exactly
// kDirtyPages pages (checked outside the time). Paired (paired.h). Goal <= 1.05.
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <bit>
#include <chrono>
#include <optional>
#include <variant>
#include <vector>

#include "paired.h"
#include "bench_common.h"
#include "guest_driver.h"
#include "raw_kvm.h"
#include "report.h"
#include "test_guest.h"

namespace virt_bench {
namespace {

using virt::guest::kDirtyBase;
using virt::guest::kDirtyPages;
using virt::guest::kDirtyPort;
using virt::guest::kModeDirtyPages;

constexpr uint64_t kSlotSize = uint64_t{1} << 30;
constexpr uint32_t kSlot = 1;    // the raw side's (slot 0 is the guest's 2 MiB)
constexpr uint32_t kBatch = 2;   // reads per side per pair
constexpr int kPairs = 100;

uint64_t Count(const std::vector<uint64_t>& bits) {
  uint64_t n = 0;
  for (uint64_t w : bits) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

std::expected<void, std::string> CheckCount(const std::vector<uint64_t>& bits) {
  if (const uint64_t n = Count(bits); n != kDirtyPages) {
    return std::unexpected(std::to_string(n) + " dirty pages, the guest wrote " +
                           std::to_string(kDirtyPages));
  }
  return {};
}

// Host memory for the library's slot, as the raw side's (MAP_NORESERVE anonymous).
class SlotMemory {
 public:
  SlotMemory() {
    void* p = ::mmap(nullptr, kSlotSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    data_ = p == MAP_FAILED ? nullptr : p;
  }
  ~SlotMemory() {
    if (data_ != nullptr) ::munmap(data_, kSlotSize);
  }
  SlotMemory(const SlotMemory&) = delete;
  SlotMemory& operator=(const SlotMemory&) = delete;
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
};

struct RawSide {
  std::optional<raw::DirtyLoggedSlot> slot;  // unmapped last, after the VM is closed
  raw::Fd vm;
  std::optional<raw::Guest> guest;
  bool manual = false;
  std::vector<uint64_t> bitmap = std::vector<uint64_t>(kSlotSize / 4096 / 64);

  std::expected<double, std::string> Batch(uint32_t n) {
    double ns = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (auto r = guest->Run(); !r) return std::unexpected(r.error());
      if (!guest->OutValue(kDirtyPort)) {
        return std::unexpected("expected the round's OUT, got " + guest->ExitText());
      }
      const auto start = std::chrono::steady_clock::now();
      if (auto r = raw::GetDirtyLog(vm.get(), kSlot, bitmap.data()); !r) {
        return std::unexpected(r.error());
      }
      bool any = false;
      for (uint64_t w : bitmap) any |= w != 0;
      if (manual && any) {
        auto r = raw::ClearDirtyLog(vm.get(), kSlot, 0, static_cast<uint32_t>(slot->pages()),
                                    bitmap.data());
        if (!r) return std::unexpected(r.error());
      }
      ns += NsSince(start);
      if (auto c = CheckCount(bitmap); !c) return std::unexpected("raw: " + c.error());
    }
    return ns;
  }
};

struct LibrarySide {
  SlotMemory memory;
  std::unique_ptr<virt::Partition> partition;
  std::unique_ptr<virt::guest::GuestDriver> driver;
  virt::DirtyLog* log = nullptr;

  std::expected<double, std::string> Batch(uint32_t n) {
    double ns = 0;
    for (uint32_t i = 0; i < n; ++i) {
      auto exit = driver->vcpu().Run();
      if (!exit) return std::unexpected("Vcpu::Run: " + exit.error().Message());
      const auto* io = std::get_if<virt::IoExit>(&*exit);
      if (io == nullptr || io->port != kDirtyPort) {
        return std::unexpected("expected the round's OUT, got " + virt::guest::Describe(*exit));
      }
      const auto start = std::chrono::steady_clock::now();
      auto bits = log->ReadAndClear(kDirtyBase, kSlotSize);
      ns += NsSince(start);
      if (!bits) return std::unexpected("ReadAndClear: " + bits.error().Message());
      if (auto c = CheckCount(*bits); !c) return std::unexpected("library: " + c.error());
    }
    return ns;
  }
};

void DirtyBitmap1g(benchmark::State& state) {
  if (!RequireKvm(state)) return;
  const raw::System* system = RawSystem(state);
  virt::Hypervisor* hv = system ? LibraryHypervisor(state) : nullptr;
  if (hv == nullptr) return;

  RawSide r;
  auto vm = raw::CreateVm(*system);
  if (!vm) return Fail(state, "raw VM", vm.error());
  r.vm = std::move(*vm);
  auto manual = raw::EnableManualDirtyLog(*system, r.vm.get());
  if (!manual) return Fail(state, "raw manual dirty log", manual.error());
  r.manual = *manual;
  auto slot = raw::DirtyLoggedSlot::Map(r.vm.get(), kSlot, kDirtyBase, kSlotSize);
  if (!slot) return Fail(state, "raw slot", slot.error());
  r.slot.emplace(std::move(*slot));
  auto guest = raw::Guest::Create(*system, r.vm.get());
  if (!guest) return Fail(state, "raw guest", guest.error());
  r.guest.emplace(std::move(*guest));
  if (auto run = r.guest->RunToEvent(kModeDirtyPages); !run) {
    return Fail(state, "raw start-up", run.error());
  }
  if (!r.guest->OutValue(kDirtyPort)) {
    return Fail(state, "raw start-up", "expected round 0, got " + r.guest->ExitText());
  }

  LibrarySide l;
  if (l.memory.data() == nullptr) return Fail(state, "mmap", "1 GiB for the library's slot");
  auto partition = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  if (!partition) return Fail(state, "CreatePartition", partition.error());
  l.partition = std::move(*partition);
  if (virt::Status s = l.partition->MapMemory(
          {kDirtyBase, kSlotSize, l.memory.data(), virt::MemoryFlags::kDirtyLog});
      !s) {
    return Fail(state, "MapMemory (dirty log)", s.error());
  }
  l.log = l.partition->dirty_log();
  if (l.log == nullptr) return Fail(state, "Partition::dirty_log", "none");
  auto driver = virt::guest::GuestDriver::Create(*l.partition, kModeDirtyPages, 0);
  if (!driver) return Fail(state, "GuestDriver::Create", driver.error());
  l.driver = std::move(*driver);
  auto first = l.driver->RunToEvent();
  if (!first) return Fail(state, "start-up", first.error());
  const auto* io = std::get_if<virt::IoExit>(&*first);
  if (io == nullptr || io->port != kDirtyPort) {
    return Fail(state, "start-up", "expected round 0, got " + virt::guest::Describe(*first));
  }
  state.counters["manual_protect"] = r.manual ? 1 : 0;

  RunPaired(
      state, "dirty_bitmap_1g", {.batch = kBatch}, [&](uint32_t n) { return r.Batch(n); },
      [&](uint32_t n) { return l.Batch(n); });
}

[[maybe_unused]] const bool kRegistered = [] {
  benchmark::RegisterBenchmark("dirty_bitmap_1g/paired", DirtyBitmap1g)
      ->Iterations(kPairs)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  AddComparison({"dirty_bitmap_1g", "", "dirty_bitmap_1g/paired", Goal::RatioAtMost(1.05), true});
  return true;
}();

}  // namespace
}  // namespace virt_bench
