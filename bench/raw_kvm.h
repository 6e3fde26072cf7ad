// raw_kvm: the baseline the benchmarks compare against: the library's kernel work, in plain ioctls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// Nothing here calls the virt library: only ioctl(2), eventfd(2), mmap(2) and close(2). It does
// the same kernel work as the library path it is compared with (same guest image and ports from
// guest/test_guest.h, same 2 MiB of RAM, same TSS / identity-map addresses, same CPUID, same
// routing table layout: 16 PIC + 24 IOAPIC entries, then the MSI entries from GSI 24), so a
// ratio above 1 is the library's own cost and nothing else.
//
// <linux/kvm.h> is included by raw_kvm.cc only: the library's headers may need to be the first
// to include it (they fix up its C++ layout), and the baseline does not depend on either way.
struct kvm_run;

namespace virt_bench::raw {

// A failure: the call and errno text, e.g. "KVM_CREATE_VM: Invalid argument".
template <typename T>
using Expected = std::expected<T, std::string>;

// The MSI every benchmark route delivers: fixed, edge, physical destination APIC 0, vector 0x40
// (what virt::MsiMessage::Fixed(0, 0x40) encodes).
inline constexpr uint32_t kMsiAddress = 0xFEE00000;
inline constexpr uint32_t kMsiData = 0x40;
// The first GSI free for MSIs (0-23 are the IOAPIC pins), where the library starts as well.
inline constexpr uint32_t kFirstMsiGsi = 24;

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }

  int get() const { return fd_; }
  void Reset();

 private:
  int fd_ = -1;
};

// /dev/kvm, opened once per process like the library's KvmHypervisor: the kvm_run size and the
// supported CPUID are read here, so the per-VM paths of both sides pay for neither.
struct System {
  Fd kvm;
  size_t run_size = 0;
  bool identity_map_addr = false;  // KVM_CAP_SET_IDENTITY_MAP_ADDR
  std::vector<uint8_t> cpuid;  // the 8-byte kvm_cpuid2 header and its entries, APIC ID 0

  static Expected<System> Open();
};

// KVM_CREATE_VM, KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR, KVM_CREATE_IRQCHIP: what
// KvmHypervisor::CreatePartition does for {.irqchip = true}.
Expected<Fd> CreateVm(const System& system);

// KVM_SET_GSI_ROUTING with the 40 irqchip defaults and `count` MSI entries for GSIs
// kFirstMsiGsi.. all delivering kMsiAddress/kMsiData. The buffer is built on each call, as the
// library's push builds its own.
Expected<void> SetMsiRouting(int vm_fd, uint32_t count);

// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), as virt::Event::Create.
Expected<Fd> NewEventFd();

// KVM_IRQFD assign / deassign of `event_fd` on `gsi`.
Expected<void> AssignIrqfd(int vm_fd, int event_fd, uint32_t gsi);
Expected<void> DeassignIrqfd(int vm_fd, int event_fd, uint32_t gsi);

// The test guest on vCPU 0 of a VM: 2 MiB of anonymous memory at guest physical 0 holding the
// image at its load address, the vCPU with its mmapped kvm_run and the host's CPUID, started in
// flat 32-bit protected mode (what GuestDriver::Create does through the library).
class Guest {
 public:
  static Expected<Guest> Create(const System& system, int vm_fd);

  Guest(Guest&& other) noexcept;
  Guest& operator=(Guest&&) = delete;
  Guest(const Guest&) = delete;
  Guest& operator=(const Guest&) = delete;
  ~Guest();

  // One KVM_RUN (re-entered on EINTR); the exit is in run().
  Expected<void> Run();

  // Runs through the guest's start-up exits (hello bytes, the mode IN answered with `mode`, the
  // MMIO read and its echo) and returns at the first other exit, left in run().
  Expected<void> RunToEvent(uint32_t mode);

  // The value written when the last exit is a single 1-, 2- or 4-byte OUT to `port`; nullopt
  // for any other exit.
  std::optional<uint32_t> OutValue(uint16_t port) const;

  // The last exit for failure messages: "exit reason 2 (io, port 0x10, out)".
  std::string ExitText() const;

  // The vCPU's fd, for the state baseline's ioctls.
  int vcpu_fd() const { return vcpu_.get(); }

 private:
  Guest() = default;

  uint8_t* memory_ = nullptr;
  Fd vcpu_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
};

// --- Doorbells, MSIs and the dirty log (doorbell_*, dirty_log_* rows) ---

// KVM_IOEVENTFD assign / deassign of `event_fd` for writes of `length` bytes to `address`
// (port I/O with `pio`, else MMIO), no data match: what KvmDoorbellOps does.
Expected<void> AssignIoeventfd(int vm_fd, int event_fd, bool pio, uint64_t address,
                               uint32_t length);
Expected<void> DeassignIoeventfd(int vm_fd, int event_fd, bool pio, uint64_t address,
                                 uint32_t length);

// KVM_SIGNAL_MSI of kMsiAddress with `data` (a fixed-delivery vector to APIC 0).
Expected<void> SignalMsi(int vm_fd, uint32_t data);

// KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) when
// the host has it, as KvmHypervisor::CreatePartition does: true when enabled.
Expected<bool> EnableManualDirtyLog(const System& system, int vm_fd);

// Anonymous memory of `size` bytes (MAP_NORESERVE) mapped as memslot `slot` at `guest_address`
// with KVM_MEM_LOG_DIRTY_PAGES; unmapped from the host on destruction (the VM goes first).
class DirtyLoggedSlot {
 public:
  static Expected<DirtyLoggedSlot> Map(int vm_fd, uint32_t slot, uint64_t guest_address,
                                       uint64_t size);
  DirtyLoggedSlot(DirtyLoggedSlot&& other) noexcept;
  DirtyLoggedSlot& operator=(DirtyLoggedSlot&&) = delete;
  ~DirtyLoggedSlot();

  uint32_t slot() const { return slot_; }
  uint64_t pages() const { return size_ / 4096; }

 private:
  DirtyLoggedSlot() = default;
  void* host_ = nullptr;
  uint64_t size_ = 0;
  uint32_t slot_ = 0;
};

// KVM_GET_DIRTY_LOG of `slot` into `bitmap` (one bit per page of the slot).
Expected<void> GetDirtyLog(int vm_fd, uint32_t slot, uint64_t* bitmap);
// KVM_CLEAR_DIRTY_LOG of the set bits of `bitmap`, which covers pages [first_page,
// first_page + num_pages) of `slot`.
Expected<void> ClearDirtyLog(int vm_fd, uint32_t slot, uint64_t first_page, uint32_t num_pages,
                             uint64_t* bitmap);

}  // namespace virt_bench::raw
