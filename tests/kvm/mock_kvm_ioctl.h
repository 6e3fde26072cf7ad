// MockKvmIoctl plus FakeKvm: a stateful default for every mocked ioctl (fd/mmap/irqfd tracking,
// routing-table capture, ordering checks, failure injection) shared by the KVM mock suites.
#pragma once

// First, so the KVM uapi structs come from the backend's own header, never <linux/kvm.h> first.
#include "virt/kvm/kvm_ioctl.h"

#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "virt/kvm/kvm_hypervisor.h"
#include "virt/msi_message.h"
#include "virt/partition.h"

namespace virt::kvm::test {

class MockKvmIoctl : public KvmIoctl {
 public:
  MOCK_METHOD(Result<int>, Open, (const char* path), (override));
  MOCK_METHOD(Status, Close, (int fd), (override));
  MOCK_METHOD(Result<int>, GetApiVersion, (int kvm_fd), (override));
  MOCK_METHOD(Result<int>, CheckExtension, (int fd, int capability), (override));
  MOCK_METHOD(Result<int>, GetVcpuMmapSize, (int kvm_fd), (override));
  MOCK_METHOD(Status, GetSupportedCpuid, (int kvm_fd, kvm_cpuid2* cpuid), (override));
  MOCK_METHOD(Status, GetMsrIndexList, (int kvm_fd, kvm_msr_list* list), (override));
  MOCK_METHOD(Status, GetMsrFeatureIndexList, (int kvm_fd, kvm_msr_list* list), (override));
  MOCK_METHOD(Result<int>, CreateVm, (int kvm_fd, unsigned long type), (override));
  MOCK_METHOD(Status, CreateIrqchip, (int vm_fd), (override));
  MOCK_METHOD(Status, CreatePit2, (int vm_fd, const kvm_pit_config& config), (override));
  MOCK_METHOD(Status, IrqLine, (int vm_fd, const kvm_irq_level& level), (override));
  MOCK_METHOD(Status, SetTssAddr, (int vm_fd, uint64_t address), (override));
  MOCK_METHOD(Status, SetIdentityMapAddr, (int vm_fd, uint64_t address), (override));
  MOCK_METHOD(Status, SetUserMemoryRegion,
              (int vm_fd, const kvm_userspace_memory_region& region), (override));
  MOCK_METHOD(Status, SetGsiRouting, (int vm_fd, const kvm_irq_routing& routing), (override));
  MOCK_METHOD(Status, Irqfd, (int vm_fd, const kvm_irqfd& irqfd), (override));
  MOCK_METHOD(Result<int>, SignalMsi, (int vm_fd, const kvm_msi& msi), (override));
  MOCK_METHOD(Status, Ioeventfd, (int vm_fd, const kvm_ioeventfd& ioeventfd), (override));
  MOCK_METHOD(Status, GetIrqchip, (int vm_fd, kvm_irqchip* chip), (override));
  MOCK_METHOD(Status, SetIrqchip, (int vm_fd, const kvm_irqchip& chip), (override));
  MOCK_METHOD(Status, GetPit2, (int vm_fd, kvm_pit_state2* pit), (override));
  MOCK_METHOD(Status, SetPit2, (int vm_fd, const kvm_pit_state2& pit), (override));
  MOCK_METHOD(Status, GetClock, (int vm_fd, kvm_clock_data* clock), (override));
  MOCK_METHOD(Status, SetClock, (int vm_fd, const kvm_clock_data& clock), (override));
  MOCK_METHOD(Status, GetDirtyLog, (int vm_fd, const kvm_dirty_log& log), (override));
  MOCK_METHOD(Status, ClearDirtyLog, (int vm_fd, const kvm_clear_dirty_log& log), (override));
  MOCK_METHOD(Status, EnableCap, (int vm_fd, const kvm_enable_cap& cap), (override));
  MOCK_METHOD(Result<int>, CreateVcpu, (int vm_fd, unsigned long vcpu_id), (override));
  MOCK_METHOD(Result<kvm_run*>, MapRun, (int vcpu_fd, size_t size), (override));
  MOCK_METHOD(Status, UnmapRun, (kvm_run * run, size_t size), (override));
  MOCK_METHOD(Status, Run, (int vcpu_fd), (override));
  MOCK_METHOD(Status, GetRegs, (int vcpu_fd, kvm_regs* regs), (override));
  MOCK_METHOD(Status, SetRegs, (int vcpu_fd, const kvm_regs& regs), (override));
  MOCK_METHOD(Status, GetSregs, (int vcpu_fd, kvm_sregs* sregs), (override));
  MOCK_METHOD(Status, SetSregs, (int vcpu_fd, const kvm_sregs& sregs), (override));
  MOCK_METHOD(Status, GetFpu, (int vcpu_fd, kvm_fpu* fpu), (override));
  MOCK_METHOD(Status, SetFpu, (int vcpu_fd, const kvm_fpu& fpu), (override));
  MOCK_METHOD(Result<int>, GetMsrs, (int vcpu_fd, kvm_msrs* msrs), (override));
  MOCK_METHOD(Result<int>, SetMsrs, (int vcpu_fd, const kvm_msrs& msrs), (override));
  MOCK_METHOD(Status, SetCpuid2, (int vcpu_fd, const kvm_cpuid2& cpuid), (override));
  MOCK_METHOD(Status, GetCpuid2, (int vcpu_fd, kvm_cpuid2* cpuid), (override));
  MOCK_METHOD(Status, GetMpState, (int vcpu_fd, kvm_mp_state* state), (override));
  MOCK_METHOD(Status, SetMpState, (int vcpu_fd, const kvm_mp_state& state), (override));
  MOCK_METHOD(Status, GetXsave, (int vcpu_fd, kvm_xsave* xsave), (override));
  MOCK_METHOD(Status, GetXsave2, (int vcpu_fd, kvm_xsave* xsave), (override));
  MOCK_METHOD(Status, SetXsave, (int vcpu_fd, const kvm_xsave& xsave), (override));
  MOCK_METHOD(Status, GetXcrs, (int vcpu_fd, kvm_xcrs* xcrs), (override));
  MOCK_METHOD(Status, SetXcrs, (int vcpu_fd, const kvm_xcrs& xcrs), (override));
  MOCK_METHOD(Status, GetDebugRegs, (int vcpu_fd, kvm_debugregs* regs), (override));
  MOCK_METHOD(Status, SetDebugRegs, (int vcpu_fd, const kvm_debugregs& regs), (override));
  MOCK_METHOD(Status, GetLapic, (int vcpu_fd, kvm_lapic_state* lapic), (override));
  MOCK_METHOD(Status, SetLapic, (int vcpu_fd, const kvm_lapic_state& lapic), (override));
  MOCK_METHOD(Status, GetVcpuEvents, (int vcpu_fd, kvm_vcpu_events* events), (override));
  MOCK_METHOD(Status, SetVcpuEvents, (int vcpu_fd, const kvm_vcpu_events& events), (override));
};

// The values FakeKvm answers with.
inline constexpr int kKvmFd = 3;
inline constexpr int kVmFd = 10;
inline constexpr int kVcpuFdBase = 20;  // vCPU n gets fd 20 + n
inline constexpr int kMaxIrqRoutes = 4096;
inline constexpr int kMaxMemslots = 32;
inline constexpr int kMaxVcpus = 8;
inline constexpr int kRunMmapSize = 2 * 4096;  // struct kvm_run + one data page
inline constexpr uint32_t kIoDataOffset = 4096;
inline constexpr uint32_t kFirstMsiGsi = 24;  // 0-23: IOAPIC pins
inline constexpr uint32_t kGsiCapacity = kMaxIrqRoutes - 16;
inline constexpr uint32_t kUsableGsis = kGsiCapacity - kFirstMsiGsi;  // 4056
inline constexpr uint32_t kIrqchipEntries = 40;
inline constexpr int kXsave2Size = 8192;  // KVM_CAP_XSAVE2 on the VM fd: an AMX-sized area
// KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST as the fake answers them.
inline const std::vector<uint32_t> kFakeMsrIndexList = {0x10, 0x1b, 0x174, 0xc0000080, 0xc0000081,
                                                        0xc0000082, 0x4b564d00};
inline const std::vector<uint32_t> kFakeFeatureMsrs = {0x10a, 0x345};

// A zeroed, 4 KiB-aligned stand-in for a vCPU's mmapped struct kvm_run.
class RunBuffer {
 public:
  explicit RunBuffer(size_t size)
      : size_((size + 4095) / 4096 * 4096),
        data_(static_cast<uint8_t*>(std::aligned_alloc(4096, size_))) {
    std::memset(data_, 0, size_);
  }
  RunBuffer(const RunBuffer&) = delete;
  RunBuffer& operator=(const RunBuffer&) = delete;
  ~RunBuffer() { std::free(data_); }
  kvm_run* run() const { return reinterpret_cast<kvm_run*>(data_); }
  uint8_t* bytes() const { return data_; }
  size_t size() const { return size_; }

 private:
  size_t size_;
  uint8_t* data_;
};

using RoutingTable = std::vector<kvm_irq_routing_entry>;

// The MSI entries of a pushed table, by GSI.
inline std::map<uint32_t, MsiMessage> MsiEntries(const RoutingTable& table) {
  std::map<uint32_t, MsiMessage> out;
  for (const kvm_irq_routing_entry& e : table) {
    if (e.type != KVM_IRQ_ROUTING_MSI) continue;
    out[e.gsi] = MsiMessage{uint64_t{e.u.msi.address_lo} | (uint64_t{e.u.msi.address_hi} << 32),
                            e.u.msi.data};
  }
  return out;
}

inline bool HasMsiEntry(const RoutingTable& table, uint32_t gsi) {
  return std::any_of(table.begin(), table.end(), [gsi](const kvm_irq_routing_entry& e) {
    return e.type == KVM_IRQ_ROUTING_MSI && e.gsi == gsi;
  });
}

inline bool HasIoapicEntry(const RoutingTable& table, uint32_t gsi) {
  return std::any_of(table.begin(), table.end(), [gsi](const kvm_irq_routing_entry& e) {
    return e.type == KVM_IRQ_ROUTING_IRQCHIP && e.gsi == gsi &&
           e.u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC && e.u.irqchip.pin == gsi;
  });
}

// The 40 entries KVM_CREATE_IRQCHIP installs: GSIs 0-15 to the PIC, 0-23 to the IOAPIC.
inline RoutingTable IrqchipDefaultTable() {
  RoutingTable t;
  for (uint32_t gsi = 0; gsi < 16; ++gsi) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi, e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
    e.u.irqchip.pin = gsi % 8;
    t.push_back(e);
  }
  for (uint32_t gsi = 0; gsi < 24; ++gsi) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi, e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    e.u.irqchip.pin = gsi;
    t.push_back(e);
  }
  return t;
}

// Checks that `table` starts with the 40 routes KVM_CREATE_IRQCHIP installs: GSIs 0-15 to the
// PIC (master pins 0-7, slave pins 0-7), GSIs 0-23 to IOAPIC pins 0-23.
inline ::testing::AssertionResult HasIrqchipDefaults(const RoutingTable& table) {
  if (table.size() < kIrqchipEntries) {
    return ::testing::AssertionFailure() << "only " << table.size() << " entries";
  }
  for (uint32_t i = 0; i < kIrqchipEntries; ++i) {
    const kvm_irq_routing_entry& e = table[i];
    const uint32_t gsi = i < 16 ? i : i - 16;
    const uint32_t chip =
        i < 16 ? (i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE) : KVM_IRQCHIP_IOAPIC;
    const uint32_t pin = i < 16 ? i % 8 : gsi;
    if (e.gsi != gsi || e.type != KVM_IRQ_ROUTING_IRQCHIP || e.flags != 0 ||
        e.u.irqchip.irqchip != chip || e.u.irqchip.pin != pin) {
      return ::testing::AssertionFailure()
             << "entry " << i << ": gsi " << e.gsi << " type " << e.type << " chip "
             << e.u.irqchip.irqchip << " pin " << e.u.irqchip.pin << ", want gsi " << gsi
             << " chip " << chip << " pin " << pin;
    }
  }
  for (size_t i = kIrqchipEntries; i < table.size(); ++i) {
    if (table[i].type != KVM_IRQ_ROUTING_MSI) {
      return ::testing::AssertionFailure() << "entry " << i << " is not an MSI entry";
    }
  }
  return ::testing::AssertionSuccess();
}

// Number of open file descriptors of this process.
inline int CountOpenFds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n - 1;  // the directory stream itself
}

// Raises the soft RLIMIT_NOFILE so a test can hold `fds` eventfds at once.
inline void EnsureFdLimit(rlim_t fds) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= fds) return;
  lim.rlim_cur = std::min(fds, lim.rlim_max);
  (void)::setrlimit(RLIMIT_NOFILE, &lim);
}

inline MsiMessage Msi(uint8_t apic_id, uint8_t vector) { return MsiMessage::Fixed(apic_id, vector); }

// What a kernel with a fully featured KVM would do, kept in memory and checked as it goes:
//  - fds handed out by open/KVM_CREATE_VM/KVM_CREATE_VCPU must each be closed exactly once;
//  - every MapRun must be unmapped with the same size;
//  - a KVM_IRQFD assign needs its GSI in the last successfully pushed routing table, a deassign
//    must find the entry still there, and no push may drop the GSI of an assigned irqfd;
//  - any call can be made to fail (once, with an errno) to exercise error paths.
// Violations are collected in problems(). Thread-safe.
class FakeKvmState {
 public:
  FakeKvmState() { cpuid_ = DefaultCpuid(); }

  // ---- configuration (set before the calls it affects) ----
  void SetCapability(int cap, int value) {
    std::lock_guard lock(mu_);
    caps_[cap] = value;
  }
  void SetApiVersion(int version) {
    std::lock_guard lock(mu_);
    api_version_ = version;
  }
  void SetMmapSize(int size) {
    std::lock_guard lock(mu_);
    mmap_size_ = size;
  }
  void SetOpenErrno(int err) {
    std::lock_guard lock(mu_);
    open_errno_ = err;
  }
  void SetCpuid(std::vector<kvm_cpuid_entry2> entries) {
    std::lock_guard lock(mu_);
    cpuid_ = std::move(entries);
  }
  void SetSignalMsiResult(int result) {
    std::lock_guard lock(mu_);
    signal_msi_result_ = result;
  }
  // KVM_GET_MSRS / KVM_SET_MSRS process at most `n` entries (nullopt: all).
  void SetMsrLimit(std::optional<int> n) {
    std::lock_guard lock(mu_);
    msr_limit_ = n;
  }
  // Whether every successful routing push is kept in push_history() (off for stress tests).
  void KeepPushHistory(bool keep) {
    std::lock_guard lock(mu_);
    keep_history_ = keep;
  }

  // ---- failure injection ----
  // The `occurrence`-th call (0-based, counted from now) of operation `op` (the name the real
  // layer puts in Error::operation, e.g. "KVM_IRQFD", "open", "mmap(kvm_run)") fails with `err`.
  void FailCall(const char* op, int occurrence = 0, int err = EIO) {
    std::lock_guard lock(mu_);
    fail_op_ = op;
    fail_occurrence_ = occurrence;
    fail_seen_ = 0;
    fail_errno_ = err;
    fail_fired_ = false;
  }
  void ClearFailure() {
    std::lock_guard lock(mu_);
    fail_op_.clear();
  }
  bool failure_fired() {
    std::lock_guard lock(mu_);
    return fail_fired_;
  }

  // ---- observation ----
  // Every call made so far, as operation names, in order.
  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return {calls_.begin(), calls_.end()};
  }
  size_t call_count() {
    std::lock_guard lock(mu_);
    return calls_.size();
  }
  std::vector<std::string> calls_since(size_t first) {
    std::lock_guard lock(mu_);
    return {calls_.begin() + static_cast<std::ptrdiff_t>(std::min(first, calls_.size())),
            calls_.end()};
  }
  std::vector<std::string> problems() {
    std::lock_guard lock(mu_);
    return problems_;
  }
  // Returns the problems seen so far and forgets them (for tests that provoke a known one).
  std::vector<std::string> TakeProblems() {
    std::lock_guard lock(mu_);
    return std::exchange(problems_, {});
  }
  std::vector<int> capabilities_checked() {
    std::lock_guard lock(mu_);
    return caps_checked_;
  }
  std::vector<std::string> opened_paths() {
    std::lock_guard lock(mu_);
    return opened_paths_;
  }
  // fds handed out and not closed yet (fd -> count).
  std::map<int, int> open_fds() {
    std::lock_guard lock(mu_);
    std::map<int, int> out;
    for (auto [fd, n] : open_fds_) {
      if (n != 0) out[fd] = n;
    }
    return out;
  }
  int close_count(int fd) {
    std::lock_guard lock(mu_);
    return closes_[fd];
  }
  size_t mapped_runs() {
    std::lock_guard lock(mu_);
    return mapped_.size();
  }
  // The kvm_run buffer MapRun returned for `vcpu_fd` (nullptr when none).
  kvm_run* run(int vcpu_fd) {
    std::lock_guard lock(mu_);
    auto it = run_by_fd_.find(vcpu_fd);
    return it == run_by_fd_.end() ? nullptr : it->second;
  }
  std::vector<kvm_userspace_memory_region> memory_calls() {
    std::lock_guard lock(mu_);
    return memory_calls_;
  }
  std::vector<kvm_msi> msis_signalled() {
    std::lock_guard lock(mu_);
    return msis_;
  }
  std::vector<kvm_irqfd> irqfd_calls() {
    std::lock_guard lock(mu_);
    return irqfd_calls_;
  }
  // (event fd, gsi) pairs currently assigned.
  std::set<std::pair<uint32_t, uint32_t>> assigned_irqfds() {
    std::lock_guard lock(mu_);
    return assigned_;
  }
  bool irqfd_assigned(int event_fd, uint32_t gsi) {
    std::lock_guard lock(mu_);
    return assigned_.contains({static_cast<uint32_t>(event_fd), gsi});
  }
  // The kernel releases an irqfd when its eventfd is closed; tests call this when a route whose
  // deassign was made to fail closed its event.
  void EventClosed(int event_fd) {
    std::lock_guard lock(mu_);
    std::erase_if(assigned_, [event_fd](const auto& a) {
      return a.first == static_cast<uint32_t>(event_fd);
    });
  }
  // Successful KVM_SET_GSI_ROUTING calls, failed ones, and the table the kernel holds now.
  uint64_t pushes() {
    std::lock_guard lock(mu_);
    return pushes_;
  }
  uint64_t failed_pushes() {
    std::lock_guard lock(mu_);
    return failed_pushes_;
  }
  RoutingTable last_table() {
    std::lock_guard lock(mu_);
    return table_;
  }
  std::vector<RoutingTable> push_history() {
    std::lock_guard lock(mu_);
    return history_;
  }
  std::vector<kvm_pit_config> pit_configs() {
    std::lock_guard lock(mu_);
    return pits_;
  }
  // Resample fd of every irqfd assigned with KVM_IRQFD_FLAG_RESAMPLE (by event fd).
  std::map<uint32_t, uint32_t> resamplers() {
    std::lock_guard lock(mu_);
    return resamplers_;
  }
  // Per-vCPU state the state ioctls read and write (tests may preset it).
  struct VcpuStateStore {
    std::vector<uint8_t> xsave = std::vector<uint8_t>(kXsave2Size, 0);
    kvm_xcrs xcrs{};
    kvm_debugregs debug{};
    kvm_lapic_state lapic{};
    kvm_vcpu_events events{};
  };
  VcpuStateStore& vcpu_state(int fd) {
    std::lock_guard lock(mu_);
    return vcpu_state_[fd];
  }
  kvm_irqchip& irqchip_state(uint32_t chip) { return chips_[chip]; }
  kvm_pit_state2& pit_state() { return pit_; }
  kvm_clock_data& clock_state() { return clock_; }
  // The MSRs KVM_GET/SET_MSRS refuse (the call stops at the first one, as KVM's does).
  void RefuseMsr(uint32_t index) {
    std::lock_guard lock(mu_);
    refused_msrs_.insert(index);
  }
  // Marks pages of a memslot dirty (as guest writes would); bits are per slot page.
  void MarkDirty(uint32_t slot, uint64_t page) {
    std::lock_guard lock(mu_);
    auto& bits = dirty_[slot];
    if (bits.size() <= page / 64) bits.resize(page / 64 + 1, 0);
    bits[page / 64] |= uint64_t{1} << (page % 64);
  }
  bool manual_dirty_protect() {
    std::lock_guard lock(mu_);
    return manual_protect_;
  }
  std::vector<kvm_clear_dirty_log> clear_calls() {
    std::lock_guard lock(mu_);
    return clears_;
  }
  std::vector<kvm_ioeventfd> ioeventfd_calls() {
    std::lock_guard lock(mu_);
    return ioeventfd_calls_;
  }
  // The ioeventfds the VM holds now.
  std::vector<kvm_ioeventfd> ioeventfds() {
    std::lock_guard lock(mu_);
    return ioeventfds_;
  }
  std::vector<kvm_irq_level> irq_lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }
  // The MP state a vCPU fd holds (KVM_GET_MP_STATE answers it; KVM_SET_MP_STATE writes it).
  uint32_t mp_state(int vcpu_fd) {
    std::lock_guard lock(mu_);
    return mp_states_[vcpu_fd];
  }
  void set_mp_state(int vcpu_fd, uint32_t state) {
    std::lock_guard lock(mu_);
    mp_states_[vcpu_fd] = state;
  }
  std::vector<uint8_t> cpuid_set(int vcpu_fd) {
    std::lock_guard lock(mu_);
    return cpuid_set_[vcpu_fd];
  }
  std::vector<kvm_cpuid_entry2> CpuidEntriesSet(int vcpu_fd) {
    std::vector<uint8_t> raw = cpuid_set(vcpu_fd);
    std::vector<kvm_cpuid_entry2> out;
    constexpr size_t kEntries = offsetof(kvm_cpuid2, entries);
    if (raw.size() < kEntries) return out;
    uint32_t nent;
    std::memcpy(&nent, raw.data() + offsetof(kvm_cpuid2, nent), sizeof nent);
    out.resize(nent);
    std::memcpy(out.data(), raw.data() + kEntries, nent * sizeof(kvm_cpuid_entry2));
    return out;
  }
  // Register state the vCPU fds hold (written by Set*, read by Get*).
  kvm_regs& regs(int fd) { return regs_[fd]; }
  kvm_sregs& sregs(int fd) { return sregs_[fd]; }
  kvm_fpu& fpu(int fd) { return fpu_[fd]; }
  std::map<uint32_t, uint64_t>& msr_values() { return msr_values_; }
  std::vector<std::vector<kvm_msr_entry>> msr_calls() {
    std::lock_guard lock(mu_);
    return msr_calls_;
  }

  // ---- the ioctls ----
  Result<int> Open(const char* path) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("open")) return Error::Errno("open", static_cast<int>(e->native_code), path);
    opened_paths_.emplace_back(path);
    if (open_errno_ != 0) return Error::Errno("open", open_errno_, path);
    ++open_fds_[kKvmFd];
    return kKvmFd;
  }
  Status Close(int fd) {
    std::lock_guard lock(mu_);
    auto failed = Enter("close");  // the fd is gone either way
    ++closes_[fd];
    if (open_fds_[fd] <= 0) {
      problems_.push_back("close(" + std::to_string(fd) + ") of an fd that is not open");
    } else if (--open_fds_[fd] == 0 && fd == kVmFd) {
      // Closing the VM fd releases its irqfds, routes and memslots.
      assigned_.clear();
      table_.clear();
      slots_.clear();
      irqchip_ = false;
      ioeventfds_.clear();
      dirty_.clear();
      manual_protect_ = false;
    }
    if (failed) return *failed;
    return Ok();
  }
  Result<int> GetApiVersion(int) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_API_VERSION")) return *e;
    return api_version_;
  }
  Result<int> CheckExtension(int, int cap) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_CHECK_EXTENSION")) return *e;
    caps_checked_.push_back(cap);
    if (auto it = caps_.find(cap); it != caps_.end()) return it->second;
    switch (cap) {
      case KVM_CAP_IRQ_ROUTING: return kMaxIrqRoutes;
      case KVM_CAP_NR_MEMSLOTS: return kMaxMemslots;
      case KVM_CAP_MAX_VCPUS: return kMaxVcpus;
      case KVM_CAP_XSAVE2: return kXsave2Size;
      default: return 1;
    }
  }
  Result<int> GetVcpuMmapSize(int) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_VCPU_MMAP_SIZE")) return *e;
    return mmap_size_;
  }
  Status GetSupportedCpuid(int, kvm_cpuid2* cpuid) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_SUPPORTED_CPUID")) return *e;
    if (cpuid->nent < cpuid_.size()) return Error::Errno("KVM_GET_SUPPORTED_CPUID", E2BIG);
    cpuid->nent = static_cast<uint32_t>(cpuid_.size());
    std::copy(cpuid_.begin(), cpuid_.end(), cpuid->entries);
    return Ok();
  }
  Status GetMsrIndexList(int, kvm_msr_list* list) { return MsrList("KVM_GET_MSR_INDEX_LIST", kFakeMsrIndexList, list); }
  Status GetMsrFeatureIndexList(int, kvm_msr_list* list) {
    return MsrList("KVM_GET_MSR_FEATURE_INDEX_LIST", kFakeFeatureMsrs, list);
  }
  Result<int> CreateVm(int, unsigned long) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_CREATE_VM")) return *e;
    ++open_fds_[kVmFd];
    return kVmFd;
  }
  Status CreateIrqchip(int) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_CREATE_IRQCHIP")) return *e;
    if (irqchip_) problems_.push_back("second KVM_CREATE_IRQCHIP");
    irqchip_ = true;
    table_ = IrqchipDefaultTable();  // what the kernel routes until the first push
    return Ok();
  }
  Status CreatePit2(int, const kvm_pit_config& config) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_CREATE_PIT2")) return *e;
    if (!irqchip_) problems_.push_back("KVM_CREATE_PIT2 before KVM_CREATE_IRQCHIP");
    pits_.push_back(config);
    return Ok();
  }
  Status IrqLine(int, const kvm_irq_level& level) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_IRQ_LINE")) return *e;
    if (!irqchip_) problems_.push_back("KVM_IRQ_LINE without an irqchip");
    lines_.push_back(level);
    return Ok();
  }
  Status SetTssAddr(int, uint64_t) { return Simple("KVM_SET_TSS_ADDR"); }
  Status SetIdentityMapAddr(int, uint64_t) { return Simple("KVM_SET_IDENTITY_MAP_ADDR"); }
  Status SetUserMemoryRegion(int, const kvm_userspace_memory_region& r) {
    std::lock_guard lock(mu_);
    memory_calls_.push_back(r);
    if (auto e = Enter("KVM_SET_USER_MEMORY_REGION")) return *e;
    if (r.memory_size == 0) {
      dirty_.erase(r.slot);  // a deleted slot's log goes with it
      if (slots_.erase(r.slot) == 0) {
        problems_.push_back("deleting memslot " + std::to_string(r.slot) + " that is not set");
      }
    } else {
      slots_[r.slot] = r;
    }
    return Ok();
  }
  Status SetGsiRouting(int, const kvm_irq_routing& routing) {
    std::lock_guard lock(mu_);
    // The caller reuses its buffer: copy the entries now.
    RoutingTable table(routing.entries, routing.entries + routing.nr);
    if (routing.flags != 0) problems_.push_back("kvm_irq_routing.flags != 0");
    if (auto e = Enter("KVM_SET_GSI_ROUTING")) {
      ++failed_pushes_;
      return *e;
    }
    for (const auto& [fd, gsi] : assigned_) {
      if (!Routed(table, gsi)) {
        problems_.push_back("push dropped GSI " + std::to_string(gsi) + " while irqfd " +
                            std::to_string(fd) + " is assigned to it");
      }
    }
    ++pushes_;
    table_ = std::move(table);
    if (keep_history_) history_.push_back(table_);
    return Ok();
  }
  Status Irqfd(int, const kvm_irqfd& irqfd) {
    std::lock_guard lock(mu_);
    irqfd_calls_.push_back(irqfd);
    if (auto e = Enter("KVM_IRQFD")) return *e;
    const std::pair<uint32_t, uint32_t> key{irqfd.fd, irqfd.gsi};
    const std::string what = "irqfd " + std::to_string(irqfd.fd) + " GSI " +
                             std::to_string(irqfd.gsi);
    if (irqfd.flags & KVM_IRQFD_FLAG_DEASSIGN) {
      if (irqfd.flags != KVM_IRQFD_FLAG_DEASSIGN) {
        problems_.push_back("deassign with flags " + std::to_string(irqfd.flags));
      }
      if (!Routed(table_, irqfd.gsi)) {
        problems_.push_back("deassign of " + what + " after its entry left the table");
      }
      if (assigned_.erase(key) == 0) problems_.push_back("deassign of unassigned " + what);
      resamplers_.erase(irqfd.fd);
    } else {
      if (irqfd.flags == KVM_IRQFD_FLAG_RESAMPLE) {
        // KVM resamples on the irqchip's EOI: only irqchip pin routes can use it.
        if (!HasIoapicEntry(table_, irqfd.gsi)) {
          problems_.push_back("resample irqfd on " + what + ", not an irqchip pin");
        }
        resamplers_[irqfd.fd] = irqfd.resamplefd;
      } else if (irqfd.flags != 0) {
        problems_.push_back("assign with flags " + std::to_string(irqfd.flags));
      } else if (irqfd.resamplefd != 0) {
        problems_.push_back("resamplefd set without KVM_IRQFD_FLAG_RESAMPLE");
      }
      if (!Routed(table_, irqfd.gsi)) {
        problems_.push_back("assign of " + what + " before its entry was pushed");
      }
      for (const auto& a : assigned_) {
        if (a.first == irqfd.fd) problems_.push_back("second assign of eventfd for " + what);
      }
      assigned_.insert(key);
    }
    return Ok();
  }
  Result<int> SignalMsi(int, const kvm_msi& msi) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SIGNAL_MSI")) return *e;
    msis_.push_back(msi);
    return signal_msi_result_;
  }
  // Keeps the registered ioeventfds as KVM does: EEXIST on a collision (KVM's rule), ENOENT
  // for a deassign that matches none (same bus, addr, len, fd and datamatch).
  Status Ioeventfd(int, const kvm_ioeventfd& k) {
    std::lock_guard lock(mu_);
    ioeventfd_calls_.push_back(k);
    if (auto e = Enter("KVM_IOEVENTFD")) return *e;
    const bool pio = k.flags & KVM_IOEVENTFD_FLAG_PIO;
    const bool wildcard = !(k.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
    if (k.flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
      auto it = std::find_if(ioeventfds_.begin(), ioeventfds_.end(), [&](const kvm_ioeventfd& o) {
        const bool o_pio = o.flags & KVM_IOEVENTFD_FLAG_PIO;
        const bool o_wild = !(o.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
        return o_pio == pio && o.addr == k.addr && o.len == k.len && o.fd == k.fd &&
               o_wild == wildcard && (wildcard || o.datamatch == k.datamatch);
      });
      if (it == ioeventfds_.end()) return Error::Errno("KVM_IOEVENTFD", ENOENT);
      ioeventfds_.erase(it);
      return Ok();
    }
    if (k.len != 0 && k.len != 1 && k.len != 2 && k.len != 4 && k.len != 8) {
      return Error::Errno("KVM_IOEVENTFD", EINVAL);
    }
    if (k.len == 0 && !wildcard) return Error::Errno("KVM_IOEVENTFD", EINVAL);
    for (const kvm_ioeventfd& o : ioeventfds_) {
      const bool o_pio = o.flags & KVM_IOEVENTFD_FLAG_PIO;
      const bool o_wild = !(o.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
      if (o_pio == pio && o.addr == k.addr &&
          (o.len == 0 || k.len == 0 ||
           (o.len == k.len && (o_wild || wildcard || o.datamatch == k.datamatch)))) {
        return Error::Errno("KVM_IOEVENTFD", EEXIST);
      }
    }
    ioeventfds_.push_back(k);
    return Ok();
  }
  Status GetIrqchip(int, kvm_irqchip* chip) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_IRQCHIP")) return *e;
    if (!irqchip_ || chip->chip_id > 2) return Error::Errno("KVM_GET_IRQCHIP", EINVAL);
    const uint32_t id = chip->chip_id;
    *chip = chips_[id];
    chip->chip_id = id;
    return Ok();
  }
  Status SetIrqchip(int, const kvm_irqchip& chip) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_IRQCHIP")) return *e;
    if (!irqchip_ || chip.chip_id > 2) return Error::Errno("KVM_SET_IRQCHIP", EINVAL);
    chips_[chip.chip_id] = chip;
    return Ok();
  }
  Status GetPit2(int, kvm_pit_state2* pit) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_PIT2")) return *e;
    if (pits_.empty()) return Error::Errno("KVM_GET_PIT2", ENXIO);
    *pit = pit_;
    return Ok();
  }
  Status SetPit2(int, const kvm_pit_state2& pit) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_PIT2")) return *e;
    if (pits_.empty()) return Error::Errno("KVM_SET_PIT2", ENXIO);
    pit_ = pit;
    return Ok();
  }
  Status GetClock(int, kvm_clock_data* clock) { return Get1("KVM_GET_CLOCK", clock_, clock); }
  Status SetClock(int, const kvm_clock_data& clock) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_CLOCK")) return *e;
    if (clock.flags & ~uint32_t{KVM_CLOCK_REALTIME}) return Error::Errno("KVM_SET_CLOCK", EINVAL);
    clock_.clock = clock.clock;
    return Ok();
  }
  // The slot's bits: all of them, cleared unless manual protection is on.
  Status GetDirtyLog(int, const kvm_dirty_log& log) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_DIRTY_LOG")) return *e;
    auto slot = slots_.find(log.slot);
    if (slot == slots_.end() || !(slot->second.flags & KVM_MEM_LOG_DIRTY_PAGES)) {
      return Error::Errno("KVM_GET_DIRTY_LOG", ENOENT);
    }
    const size_t words = (slot->second.memory_size / 4096 + 63) / 64;
    auto& bits = dirty_[log.slot];
    bits.resize(std::max(bits.size(), words), 0);
    std::memcpy(log.dirty_bitmap, bits.data(), words * 8);
    if (!manual_protect_) std::fill(bits.begin(), bits.end(), 0);
    return Ok();
  }
  Status ClearDirtyLog(int, const kvm_clear_dirty_log& log) {
    std::lock_guard lock(mu_);
    clears_.push_back(log);
    if (auto e = Enter("KVM_CLEAR_DIRTY_LOG")) return *e;
    auto slot = slots_.find(log.slot);
    if (!manual_protect_ || slot == slots_.end()) return Error::Errno("KVM_CLEAR_DIRTY_LOG", EINVAL);
    const uint64_t pages = slot->second.memory_size / 4096;
    // KVM: first_page a multiple of 64; num_pages too, unless the range ends at the slot's end.
    if (log.first_page % 64 != 0 || log.first_page + log.num_pages > pages ||
        (log.num_pages % 64 != 0 && log.first_page + log.num_pages != pages)) {
      return Error::Errno("KVM_CLEAR_DIRTY_LOG", EINVAL);
    }
    auto& bits = dirty_[log.slot];
    const auto* mask = static_cast<const uint64_t*>(log.dirty_bitmap);
    for (uint64_t i = 0; i < log.num_pages; ++i) {
      const uint64_t page = log.first_page + i;
      if (!((mask[i / 64] >> (i % 64)) & 1) || page / 64 >= bits.size()) continue;
      bits[page / 64] &= ~(uint64_t{1} << (page % 64));
    }
    return Ok();
  }
  Status EnableCap(int, const kvm_enable_cap& cap) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_ENABLE_CAP")) return *e;
    if (cap.cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) {
      if (cap.args[0] & ~uint64_t{KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}) {
        return Error::Errno("KVM_ENABLE_CAP", EINVAL);
      }
      manual_protect_ = cap.args[0] != 0;
      return Ok();
    }
    return Error::Errno("KVM_ENABLE_CAP", EINVAL);
  }
  Result<int> CreateVcpu(int, unsigned long id) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_CREATE_VCPU")) return *e;
    const int fd = kVcpuFdBase + static_cast<int>(id);
    ++open_fds_[fd];
    // With the in-kernel LAPIC, vCPU 0 is the boot processor and the others wait for INIT/SIPI.
    mp_states_[fd] = (irqchip_ && id != 0) ? KVM_MP_STATE_UNINITIALIZED : KVM_MP_STATE_RUNNABLE;
    return fd;
  }
  Result<kvm_run*> MapRun(int vcpu_fd, size_t size) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("mmap(kvm_run)")) return *e;
    auto& buf = buffers_.emplace_back(std::make_unique<RunBuffer>(size));
    mapped_[buf->run()] = size;
    run_by_fd_[vcpu_fd] = buf->run();
    return buf->run();
  }
  Status UnmapRun(kvm_run* run, size_t size) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("munmap(kvm_run)")) return *e;
    auto it = mapped_.find(run);
    if (it == mapped_.end()) {
      problems_.push_back("munmap of a kvm_run that is not mapped");
    } else {
      if (it->second != size) problems_.push_back("munmap of kvm_run with the wrong size");
      mapped_.erase(it);
    }
    return Ok();
  }
  Status Run(int vcpu_fd) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_RUN")) return *e;
    ran_.insert(vcpu_fd);
    if (auto it = run_by_fd_.find(vcpu_fd); it != run_by_fd_.end()) {
      it->second->exit_reason = KVM_EXIT_HLT;
    }
    return Ok();
  }
  Status GetRegs(int fd, kvm_regs* out) { return Get("KVM_GET_REGS", regs_, fd, out); }
  Status SetRegs(int fd, const kvm_regs& in) { return Set("KVM_SET_REGS", regs_, fd, in); }
  Status GetSregs(int fd, kvm_sregs* out) { return Get("KVM_GET_SREGS", sregs_, fd, out); }
  Status SetSregs(int fd, const kvm_sregs& in) { return Set("KVM_SET_SREGS", sregs_, fd, in); }
  Status GetFpu(int fd, kvm_fpu* out) { return Get("KVM_GET_FPU", fpu_, fd, out); }
  Status SetFpu(int fd, const kvm_fpu& in) { return Set("KVM_SET_FPU", fpu_, fd, in); }
  Result<int> GetMsrs(int, kvm_msrs* msrs) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_MSRS")) return *e;
    msr_calls_.emplace_back(msrs->entries, msrs->entries + msrs->nmsrs);
    const int n = Processed(msrs->entries, msrs->nmsrs);
    for (int i = 0; i < n; ++i) msrs->entries[i].data = msr_values_[msrs->entries[i].index];
    return n;
  }
  Result<int> SetMsrs(int, const kvm_msrs& msrs) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_MSRS")) return *e;
    msr_calls_.emplace_back(msrs.entries, msrs.entries + msrs.nmsrs);
    const int n = Processed(msrs.entries, msrs.nmsrs);
    for (int i = 0; i < n; ++i) msr_values_[msrs.entries[i].index] = msrs.entries[i].data;
    return n;
  }
  Status SetCpuid2(int fd, const kvm_cpuid2& cpuid) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_CPUID2")) return *e;
    if (ran_.contains(fd)) return Error::Errno("KVM_SET_CPUID2", EINVAL);  // KVM since 5.16
    const size_t bytes = offsetof(kvm_cpuid2, entries) + cpuid.nent * sizeof(kvm_cpuid_entry2);
    const auto* p = reinterpret_cast<const uint8_t*>(&cpuid);
    cpuid_set_[fd].assign(p, p + bytes);
    return Ok();
  }
  Status GetCpuid2(int fd, kvm_cpuid2* cpuid) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_CPUID2")) return *e;
    const std::vector<uint8_t>& raw = cpuid_set_[fd];
    uint32_t nent = 0;
    if (raw.size() >= sizeof(kvm_cpuid2)) std::memcpy(&nent, raw.data(), sizeof nent);
    if (cpuid->nent < nent) {
      cpuid->nent = nent;
      return Error::Errno("KVM_GET_CPUID2", E2BIG);
    }
    cpuid->nent = nent;
    if (nent > 0) {
      std::memcpy(cpuid->entries, raw.data() + offsetof(kvm_cpuid2, entries),
                  nent * sizeof(kvm_cpuid_entry2));
    }
    return Ok();
  }
  Status GetXsave(int fd, kvm_xsave* x) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_XSAVE")) return *e;
    std::memcpy(x, vcpu_state_[fd].xsave.data(), sizeof(kvm_xsave));
    return Ok();
  }
  Status GetXsave2(int fd, kvm_xsave* x) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_XSAVE2")) return *e;
    std::memcpy(x, vcpu_state_[fd].xsave.data(), vcpu_state_[fd].xsave.size());
    return Ok();
  }
  Status SetXsave(int fd, const kvm_xsave& x) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_XSAVE")) return *e;
    auto& xs = vcpu_state_[fd].xsave;
    const size_t n = caps_.count(KVM_CAP_XSAVE2) && caps_[KVM_CAP_XSAVE2] == 0 ? 4096 : xs.size();
    std::memcpy(xs.data(), &x, n);
    return Ok();
  }
  Status GetXcrs(int fd, kvm_xcrs* x) { return Get1("KVM_GET_XCRS", vcpu_state_[fd].xcrs, x); }
  Status SetXcrs(int fd, const kvm_xcrs& x) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_XCRS")) return *e;
    if (x.nr_xcrs > KVM_MAX_XCRS || x.flags != 0) return Error::Errno("KVM_SET_XCRS", EINVAL);
    vcpu_state_[fd].xcrs = x;
    return Ok();
  }
  Status GetDebugRegs(int fd, kvm_debugregs* r) {
    return Get1("KVM_GET_DEBUGREGS", vcpu_state_[fd].debug, r);
  }
  Status SetDebugRegs(int fd, const kvm_debugregs& r) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_DEBUGREGS")) return *e;
    if (r.flags != 0) return Error::Errno("KVM_SET_DEBUGREGS", EINVAL);
    vcpu_state_[fd].debug = r;
    return Ok();
  }
  Status GetLapic(int fd, kvm_lapic_state* l) { return Get1("KVM_GET_LAPIC", vcpu_state_[fd].lapic, l); }
  Status SetLapic(int fd, const kvm_lapic_state& l) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_LAPIC")) return *e;
    vcpu_state_[fd].lapic = l;
    return Ok();
  }
  Status GetVcpuEvents(int fd, kvm_vcpu_events* ev) {
    return Get1("KVM_GET_VCPU_EVENTS", vcpu_state_[fd].events, ev);
  }
  Status SetVcpuEvents(int fd, const kvm_vcpu_events& ev) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_VCPU_EVENTS")) return *e;
    vcpu_state_[fd].events = ev;
    return Ok();
  }
  Status GetMpState(int fd, kvm_mp_state* state) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_GET_MP_STATE")) return *e;
    state->mp_state = mp_states_[fd];
    return Ok();
  }
  Status SetMpState(int fd, const kvm_mp_state& state) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("KVM_SET_MP_STATE")) return *e;
    if (state.mp_state > KVM_MP_STATE_SIPI_RECEIVED) return Error::Errno("KVM_SET_MP_STATE", EINVAL);
    mp_states_[fd] = state.mp_state;
    return Ok();
  }

  // A few CPUID leaves as a host reports them; leaf 1 and 0xB carry a foreign APIC ID (0xAB /
  // 0xCD) that KVM_SET_CPUID2 must see replaced by the vCPU index.
  static std::vector<kvm_cpuid_entry2> DefaultCpuid() {
    std::vector<kvm_cpuid_entry2> v;
    auto add = [&v](uint32_t fn, uint32_t index, uint32_t flags, uint32_t eax, uint32_t ebx,
                    uint32_t ecx, uint32_t edx) {
      kvm_cpuid_entry2 e{};
      e.function = fn, e.index = index, e.flags = flags;
      e.eax = eax, e.ebx = ebx, e.ecx = ecx, e.edx = edx;
      v.push_back(e);
    };
    add(0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69);  // "GenuineIntel"
    add(1, 0, 0, 0x000906ea, 0xAB010800, 0x7ffafbff, 0xbfebfbff);
    add(0xB, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 1, 1, 0x100, 0xCD);
    add(0xB, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 4, 4, 0x201, 0xCD);
    add(0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800);
    return v;
  }

 private:
  // Logs the call; returns the injected error when this call is the one to fail.
  std::optional<Error> Enter(const char* op) {
    calls_.push_back(op);
    if (fail_op_.empty() || fail_op_ != op) return std::nullopt;
    if (fail_seen_++ != fail_occurrence_) return std::nullopt;
    fail_fired_ = true;
    return Error::Errno(op, fail_errno_);
  }
  Status Simple(const char* op) {
    std::lock_guard lock(mu_);
    if (auto e = Enter(op)) return *e;
    return Ok();
  }
  template <typename T>
  Status Get(const char* op, std::map<int, T>& store, int fd, T* out) {
    std::lock_guard lock(mu_);
    if (auto e = Enter(op)) return *e;
    *out = store[fd];
    return Ok();
  }
  template <typename T>
  Status Set(const char* op, std::map<int, T>& store, int fd, const T& in) {
    std::lock_guard lock(mu_);
    if (auto e = Enter(op)) return *e;
    store[fd] = in;
    return Ok();
  }
  // Whether `gsi` has a route in `table`: an MSI entry, or (for irqchip pins) its IOAPIC pin.
  static bool Routed(const RoutingTable& table, uint32_t gsi) {
    return HasMsiEntry(table, gsi) || HasIoapicEntry(table, gsi);
  }
  int Processed(const kvm_msr_entry* entries, uint32_t n) const {
    int limit = msr_limit_ ? std::min(*msr_limit_, static_cast<int>(n)) : static_cast<int>(n);
    for (int i = 0; i < limit; ++i) {
      if (refused_msrs_.contains(entries[i].index)) return i;
    }
    return limit;
  }
  template <typename T>
  Status Get1(const char* op, const T& from, T* out) {
    std::lock_guard lock(mu_);
    if (auto e = Enter(op)) return *e;
    *out = from;
    return Ok();
  }
  Status MsrList(const char* op, const std::vector<uint32_t>& list, kvm_msr_list* out) {
    std::lock_guard lock(mu_);
    if (auto e = Enter(op)) return *e;
    const uint32_t capacity = out->nmsrs;
    out->nmsrs = static_cast<uint32_t>(list.size());
    if (capacity < list.size()) return Error::Errno(op, E2BIG);
    std::copy(list.begin(), list.end(), out->indices);
    return Ok();
  }

  std::mutex mu_;
  int api_version_ = KVM_API_VERSION;
  std::map<int, int> caps_;
  int mmap_size_ = kRunMmapSize;
  int open_errno_ = 0;
  std::vector<kvm_cpuid_entry2> cpuid_;
  int signal_msi_result_ = 1;
  std::optional<int> msr_limit_;
  bool keep_history_ = true;

  std::string fail_op_;
  int fail_occurrence_ = 0;
  int fail_seen_ = 0;
  int fail_errno_ = EIO;
  bool fail_fired_ = false;

  std::vector<const char*> calls_;
  std::vector<std::string> problems_;
  std::vector<int> caps_checked_;
  std::vector<std::string> opened_paths_;
  std::map<int, int> open_fds_;
  std::map<int, int> closes_;
  std::vector<std::unique_ptr<RunBuffer>> buffers_;  // kept until the fake dies
  std::map<kvm_run*, size_t> mapped_;
  std::map<int, kvm_run*> run_by_fd_;
  std::vector<kvm_userspace_memory_region> memory_calls_;
  std::map<uint32_t, kvm_userspace_memory_region> slots_;
  std::vector<kvm_msi> msis_;
  std::vector<kvm_irqfd> irqfd_calls_;
  std::set<std::pair<uint32_t, uint32_t>> assigned_;
  RoutingTable table_;
  std::vector<RoutingTable> history_;
  uint64_t pushes_ = 0;
  uint64_t failed_pushes_ = 0;
  std::map<int, std::vector<uint8_t>> cpuid_set_;
  bool irqchip_ = false;
  std::vector<kvm_pit_config> pits_;
  std::vector<kvm_irq_level> lines_;
  std::vector<kvm_ioeventfd> ioeventfd_calls_;
  std::vector<kvm_ioeventfd> ioeventfds_;
  std::map<int, uint32_t> mp_states_;
  std::set<int> ran_;                   // vCPU fds that have been through KVM_RUN
  std::map<uint32_t, uint32_t> resamplers_;  // event fd -> resample fd of assigned irqfds
  std::map<int, VcpuStateStore> vcpu_state_;
  kvm_irqchip chips_[3]{};
  kvm_pit_state2 pit_{};
  kvm_clock_data clock_{};
  std::set<uint32_t> refused_msrs_;
  std::map<uint32_t, std::vector<uint64_t>> dirty_;  // slot -> page bits
  bool manual_protect_ = false;
  std::vector<kvm_clear_dirty_log> clears_;
  std::map<int, kvm_regs> regs_;
  std::map<int, kvm_sregs> sregs_;
  std::map<int, kvm_fpu> fpu_;
  std::map<uint32_t, uint64_t> msr_values_;
  std::vector<std::vector<kvm_msr_entry>> msr_calls_;
};

// A NiceMock<MockKvmIoctl> whose every method defaults (ON_CALL) to the FakeKvmState, so a test
// only writes EXPECT_CALLs for what it checks; an EXPECT_CALL without an action still runs the
// fake.
class FakeKvm {
 public:
  using Mock = ::testing::NiceMock<MockKvmIoctl>;

  FakeKvm() : mock(std::make_shared<Mock>()), state(std::make_shared<FakeKvmState>()) {
    using ::testing::_;
    std::shared_ptr<FakeKvmState> s = state;  // the actions keep the state alive
    Mock& m = *mock;
    ON_CALL(m, Open(_)).WillByDefault([s](const char* p) { return s->Open(p); });
    ON_CALL(m, Close(_)).WillByDefault([s](int fd) { return s->Close(fd); });
    ON_CALL(m, GetApiVersion(_)).WillByDefault([s](int fd) { return s->GetApiVersion(fd); });
    ON_CALL(m, CheckExtension(_, _)).WillByDefault([s](int fd, int cap) {
      return s->CheckExtension(fd, cap);
    });
    ON_CALL(m, GetVcpuMmapSize(_)).WillByDefault([s](int fd) { return s->GetVcpuMmapSize(fd); });
    ON_CALL(m, GetSupportedCpuid(_, _)).WillByDefault([s](int fd, kvm_cpuid2* c) {
      return s->GetSupportedCpuid(fd, c);
    });
    ON_CALL(m, GetMsrIndexList(_, _)).WillByDefault([s](int fd, kvm_msr_list* l) {
      return s->GetMsrIndexList(fd, l);
    });
    ON_CALL(m, GetMsrFeatureIndexList(_, _)).WillByDefault([s](int fd, kvm_msr_list* l) {
      return s->GetMsrFeatureIndexList(fd, l);
    });
    ON_CALL(m, GetIrqchip(_, _)).WillByDefault([s](int fd, kvm_irqchip* c) {
      return s->GetIrqchip(fd, c);
    });
    ON_CALL(m, SetIrqchip(_, _)).WillByDefault([s](int fd, const kvm_irqchip& c) {
      return s->SetIrqchip(fd, c);
    });
    ON_CALL(m, GetPit2(_, _)).WillByDefault([s](int fd, kvm_pit_state2* p) {
      return s->GetPit2(fd, p);
    });
    ON_CALL(m, SetPit2(_, _)).WillByDefault([s](int fd, const kvm_pit_state2& p) {
      return s->SetPit2(fd, p);
    });
    ON_CALL(m, GetClock(_, _)).WillByDefault([s](int fd, kvm_clock_data* c) {
      return s->GetClock(fd, c);
    });
    ON_CALL(m, SetClock(_, _)).WillByDefault([s](int fd, const kvm_clock_data& c) {
      return s->SetClock(fd, c);
    });
    ON_CALL(m, GetDirtyLog(_, _)).WillByDefault([s](int fd, const kvm_dirty_log& l) {
      return s->GetDirtyLog(fd, l);
    });
    ON_CALL(m, ClearDirtyLog(_, _)).WillByDefault([s](int fd, const kvm_clear_dirty_log& l) {
      return s->ClearDirtyLog(fd, l);
    });
    ON_CALL(m, EnableCap(_, _)).WillByDefault([s](int fd, const kvm_enable_cap& c) {
      return s->EnableCap(fd, c);
    });
    ON_CALL(m, GetXsave(_, _)).WillByDefault([s](int fd, kvm_xsave* x) { return s->GetXsave(fd, x); });
    ON_CALL(m, GetXsave2(_, _)).WillByDefault([s](int fd, kvm_xsave* x) {
      return s->GetXsave2(fd, x);
    });
    ON_CALL(m, SetXsave(_, _)).WillByDefault([s](int fd, const kvm_xsave& x) {
      return s->SetXsave(fd, x);
    });
    ON_CALL(m, GetXcrs(_, _)).WillByDefault([s](int fd, kvm_xcrs* x) { return s->GetXcrs(fd, x); });
    ON_CALL(m, SetXcrs(_, _)).WillByDefault([s](int fd, const kvm_xcrs& x) {
      return s->SetXcrs(fd, x);
    });
    ON_CALL(m, GetDebugRegs(_, _)).WillByDefault([s](int fd, kvm_debugregs* r) {
      return s->GetDebugRegs(fd, r);
    });
    ON_CALL(m, SetDebugRegs(_, _)).WillByDefault([s](int fd, const kvm_debugregs& r) {
      return s->SetDebugRegs(fd, r);
    });
    ON_CALL(m, GetLapic(_, _)).WillByDefault([s](int fd, kvm_lapic_state* l) {
      return s->GetLapic(fd, l);
    });
    ON_CALL(m, SetLapic(_, _)).WillByDefault([s](int fd, const kvm_lapic_state& l) {
      return s->SetLapic(fd, l);
    });
    ON_CALL(m, GetVcpuEvents(_, _)).WillByDefault([s](int fd, kvm_vcpu_events* e) {
      return s->GetVcpuEvents(fd, e);
    });
    ON_CALL(m, SetVcpuEvents(_, _)).WillByDefault([s](int fd, const kvm_vcpu_events& e) {
      return s->SetVcpuEvents(fd, e);
    });
    ON_CALL(m, CreateVm(_, _)).WillByDefault([s](int fd, unsigned long t) {
      return s->CreateVm(fd, t);
    });
    ON_CALL(m, CreateIrqchip(_)).WillByDefault([s](int fd) { return s->CreateIrqchip(fd); });
    ON_CALL(m, CreatePit2(_, _)).WillByDefault([s](int fd, const kvm_pit_config& c) {
      return s->CreatePit2(fd, c);
    });
    ON_CALL(m, IrqLine(_, _)).WillByDefault([s](int fd, const kvm_irq_level& l) {
      return s->IrqLine(fd, l);
    });
    ON_CALL(m, SetTssAddr(_, _)).WillByDefault([s](int fd, uint64_t a) {
      return s->SetTssAddr(fd, a);
    });
    ON_CALL(m, SetIdentityMapAddr(_, _)).WillByDefault([s](int fd, uint64_t a) {
      return s->SetIdentityMapAddr(fd, a);
    });
    ON_CALL(m, SetUserMemoryRegion(_, _))
        .WillByDefault([s](int fd, const kvm_userspace_memory_region& r) {
          return s->SetUserMemoryRegion(fd, r);
        });
    ON_CALL(m, SetGsiRouting(_, _)).WillByDefault([s](int fd, const kvm_irq_routing& r) {
      return s->SetGsiRouting(fd, r);
    });
    ON_CALL(m, Irqfd(_, _)).WillByDefault([s](int fd, const kvm_irqfd& i) {
      return s->Irqfd(fd, i);
    });
    ON_CALL(m, SignalMsi(_, _)).WillByDefault([s](int fd, const kvm_msi& msi) {
      return s->SignalMsi(fd, msi);
    });
    ON_CALL(m, Ioeventfd(_, _)).WillByDefault([s](int fd, const kvm_ioeventfd& i) {
      return s->Ioeventfd(fd, i);
    });
    ON_CALL(m, CreateVcpu(_, _)).WillByDefault([s](int fd, unsigned long id) {
      return s->CreateVcpu(fd, id);
    });
    ON_CALL(m, MapRun(_, _)).WillByDefault([s](int fd, size_t size) {
      return s->MapRun(fd, size);
    });
    ON_CALL(m, UnmapRun(_, _)).WillByDefault([s](kvm_run* run, size_t size) {
      return s->UnmapRun(run, size);
    });
    ON_CALL(m, Run(_)).WillByDefault([s](int fd) { return s->Run(fd); });
    ON_CALL(m, GetRegs(_, _)).WillByDefault([s](int fd, kvm_regs* r) { return s->GetRegs(fd, r); });
    ON_CALL(m, SetRegs(_, _)).WillByDefault([s](int fd, const kvm_regs& r) {
      return s->SetRegs(fd, r);
    });
    ON_CALL(m, GetSregs(_, _)).WillByDefault([s](int fd, kvm_sregs* r) {
      return s->GetSregs(fd, r);
    });
    ON_CALL(m, SetSregs(_, _)).WillByDefault([s](int fd, const kvm_sregs& r) {
      return s->SetSregs(fd, r);
    });
    ON_CALL(m, GetFpu(_, _)).WillByDefault([s](int fd, kvm_fpu* f) { return s->GetFpu(fd, f); });
    ON_CALL(m, SetFpu(_, _)).WillByDefault([s](int fd, const kvm_fpu& f) {
      return s->SetFpu(fd, f);
    });
    ON_CALL(m, GetMsrs(_, _)).WillByDefault([s](int fd, kvm_msrs* msrs) {
      return s->GetMsrs(fd, msrs);
    });
    ON_CALL(m, SetMsrs(_, _)).WillByDefault([s](int fd, const kvm_msrs& msrs) {
      return s->SetMsrs(fd, msrs);
    });
    ON_CALL(m, SetCpuid2(_, _)).WillByDefault([s](int fd, const kvm_cpuid2& c) {
      return s->SetCpuid2(fd, c);
    });
    ON_CALL(m, GetCpuid2(_, _)).WillByDefault([s](int fd, kvm_cpuid2* c) {
      return s->GetCpuid2(fd, c);
    });
    ON_CALL(m, GetMpState(_, _)).WillByDefault([s](int fd, kvm_mp_state* st) {
      return s->GetMpState(fd, st);
    });
    ON_CALL(m, SetMpState(_, _)).WillByDefault([s](int fd, const kvm_mp_state& st) {
      return s->SetMpState(fd, st);
    });
  }

  std::shared_ptr<Mock> mock;
  std::shared_ptr<FakeKvmState> state;
};

// Base fixture: a FakeKvm, helpers to open a hypervisor and a partition, and end-of-test checks
// that the fake saw no ordering violation and nothing leaked (every fd closed once, every
// kvm_run unmapped, no irqfd left assigned). Tests keep backend objects in locals so they are
// gone before TearDown runs.
class KvmMockTest : public ::testing::Test {
 protected:
  MockKvmIoctl& mock() { return *kvm_.mock; }
  FakeKvmState& fake() { return *kvm_.state; }

  std::unique_ptr<KvmHypervisor> NewHypervisor() {
    auto h = KvmHypervisor::Create(kvm_.mock);
    EXPECT_TRUE(h.has_value()) << h.error().Message();
    return h ? std::move(*h) : nullptr;
  }
  std::unique_ptr<Partition> NewPartition(KvmHypervisor& hv, PartitionConfig config = {}) {
    auto p = hv.CreatePartition(config);
    EXPECT_TRUE(p.has_value()) << p.error().Message();
    return p ? std::move(*p) : nullptr;
  }

  void TearDown() override {
    if (!check_at_teardown_) return;
    EXPECT_THAT(fake().problems(), ::testing::IsEmpty());
    EXPECT_THAT(fake().open_fds(), ::testing::IsEmpty()) << "fds never closed";
    EXPECT_EQ(fake().mapped_runs(), 0u) << "kvm_run never unmapped";
    EXPECT_THAT(fake().assigned_irqfds(), ::testing::IsEmpty()) << "irqfds left assigned";
  }

  FakeKvm kvm_;
  bool check_at_teardown_ = true;
};

// gtest assertion helpers for Result/Status.
#define VIRT_ASSERT_OK(expr)                                            \
  do {                                                                  \
    const auto& virt_r_ = (expr);                                       \
    ASSERT_TRUE(virt_r_.has_value()) << virt_r_.error().Message();      \
  } while (0)
#define VIRT_EXPECT_OK(expr)                                            \
  do {                                                                  \
    const auto& virt_r_ = (expr);                                       \
    EXPECT_TRUE(virt_r_.has_value()) << virt_r_.error().Message();      \
  } while (0)

// Matches a Result/Status holding an error with the given ErrorCode.
MATCHER_P(IsErrorCode, code, "fails with " + std::string(ToString(code))) {
  if (arg.has_value()) {
    *result_listener << "succeeded";
    return false;
  }
  *result_listener << "error: " << arg.error().Message();
  return arg.error().code == code;
}
MATCHER(IsOk, "succeeds") {
  if (arg.has_value()) return true;
  *result_listener << "error: " << arg.error().Message();
  return false;
}

}  // namespace virt::kvm::test
