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

// Its constructor and destructor are defined once, in fake_kvm.cc: they instantiate the
// machinery of every mocked method, which would otherwise be compiled into each test file.
class MockKvmIoctl : public KvmIoctl {
 public:
  MockKvmIoctl();
  ~MockKvmIoctl() override;
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
  void SetCapability(int cap, int value);
  void SetApiVersion(int version);
  void SetMmapSize(int size);
  void SetOpenErrno(int err);
  void SetCpuid(std::vector<kvm_cpuid_entry2> entries);
  void SetSignalMsiResult(int result);
  // KVM_GET_MSRS / KVM_SET_MSRS process at most `n` entries (nullopt: all).
  void SetMsrLimit(std::optional<int> n);
  // Whether every successful routing push is kept in push_history() (off for stress tests).
  void KeepPushHistory(bool keep);

  // ---- failure injection ----
  // The `occurrence`-th call (0-based, counted from now) of operation `op` (the name the real
  // layer puts in Error::operation, e.g. "KVM_IRQFD", "open", "mmap(kvm_run)") fails with `err`.
  void FailCall(const char* op, int occurrence = 0, int err = EIO);
  void ClearFailure();
  bool failure_fired();

  // ---- observation ----
  // Every call made so far, as operation names, in order.
  std::vector<std::string> calls();
  size_t call_count();
  std::vector<std::string> calls_since(size_t first);
  std::vector<std::string> problems();
  // Returns the problems seen so far and forgets them (for tests that provoke a known one).
  std::vector<std::string> TakeProblems();
  std::vector<int> capabilities_checked();
  std::vector<std::string> opened_paths();
  // fds handed out and not closed yet (fd -> count).
  std::map<int, int> open_fds();
  int close_count(int fd);
  size_t mapped_runs();
  // The kvm_run buffer MapRun returned for `vcpu_fd` (nullptr when none).
  kvm_run* run(int vcpu_fd);
  std::vector<kvm_userspace_memory_region> memory_calls();
  std::vector<kvm_msi> msis_signalled();
  std::vector<kvm_irqfd> irqfd_calls();
  // (event fd, gsi) pairs currently assigned.
  std::set<std::pair<uint32_t, uint32_t>> assigned_irqfds();
  bool irqfd_assigned(int event_fd, uint32_t gsi);
  // The kernel releases an irqfd when its eventfd is closed; tests call this when a route whose
  // deassign was made to fail closed its event.
  void EventClosed(int event_fd);
  // Successful KVM_SET_GSI_ROUTING calls, failed ones, and the table the kernel holds now.
  uint64_t pushes();
  uint64_t failed_pushes();
  RoutingTable last_table();
  std::vector<RoutingTable> push_history();
  std::vector<kvm_pit_config> pit_configs();
  // Resample fd of every irqfd assigned with KVM_IRQFD_FLAG_RESAMPLE (by event fd).
  std::map<uint32_t, uint32_t> resamplers();
  // Per-vCPU state the state ioctls read and write (tests may preset it).
  struct VcpuStateStore {
    std::vector<uint8_t> xsave = std::vector<uint8_t>(kXsave2Size, 0);
    kvm_xcrs xcrs{};
    kvm_debugregs debug{};
    kvm_lapic_state lapic{};
    kvm_vcpu_events events{};
  };
  VcpuStateStore& vcpu_state(int fd);
  kvm_irqchip& irqchip_state(uint32_t chip) { return chips_[chip]; }
  kvm_pit_state2& pit_state() { return pit_; }
  kvm_clock_data& clock_state() { return clock_; }
  // The MSRs KVM_GET/SET_MSRS refuse (the call stops at the first one, as KVM's does).
  void RefuseMsr(uint32_t index);
  // Marks pages of a memslot dirty (as guest writes would); bits are per slot page.
  void MarkDirty(uint32_t slot, uint64_t page);
  bool manual_dirty_protect();
  std::vector<kvm_clear_dirty_log> clear_calls();
  std::vector<kvm_ioeventfd> ioeventfd_calls();
  // The ioeventfds the VM holds now.
  std::vector<kvm_ioeventfd> ioeventfds();
  std::vector<kvm_irq_level> irq_lines();
  // The MP state a vCPU fd holds (KVM_GET_MP_STATE answers it; KVM_SET_MP_STATE writes it).
  uint32_t mp_state(int vcpu_fd);
  void set_mp_state(int vcpu_fd, uint32_t state);
  std::vector<uint8_t> cpuid_set(int vcpu_fd);
  std::vector<kvm_cpuid_entry2> CpuidEntriesSet(int vcpu_fd);
  // Register state the vCPU fds hold (written by Set*, read by Get*).
  kvm_regs& regs(int fd) { return regs_[fd]; }
  kvm_sregs& sregs(int fd) { return sregs_[fd]; }
  kvm_fpu& fpu(int fd) { return fpu_[fd]; }
  std::map<uint32_t, uint64_t>& msr_values() { return msr_values_; }
  std::vector<std::vector<kvm_msr_entry>> msr_calls();

  // ---- the ioctls ----
  Result<int> Open(const char* path);
  Status Close(int fd);
  Result<int> GetApiVersion(int);
  Result<int> CheckExtension(int, int cap);
  Result<int> GetVcpuMmapSize(int);
  Status GetSupportedCpuid(int, kvm_cpuid2* cpuid);
  Status GetMsrIndexList(int, kvm_msr_list* list) { return MsrList("KVM_GET_MSR_INDEX_LIST", kFakeMsrIndexList, list); }
  Status GetMsrFeatureIndexList(int, kvm_msr_list* list);
  Result<int> CreateVm(int, unsigned long);
  Status CreateIrqchip(int);
  Status CreatePit2(int, const kvm_pit_config& config);
  Status IrqLine(int, const kvm_irq_level& level);
  Status SetTssAddr(int, uint64_t) { return Simple("KVM_SET_TSS_ADDR"); }
  Status SetIdentityMapAddr(int, uint64_t) { return Simple("KVM_SET_IDENTITY_MAP_ADDR"); }
  Status SetUserMemoryRegion(int, const kvm_userspace_memory_region& r);
  Status SetGsiRouting(int, const kvm_irq_routing& routing);
  Status Irqfd(int, const kvm_irqfd& irqfd);
  Result<int> SignalMsi(int, const kvm_msi& msi);
  // Keeps the registered ioeventfds as KVM does: EEXIST on a collision (KVM's rule), ENOENT
  // for a deassign that matches none (same bus, addr, len, fd and datamatch).
  Status Ioeventfd(int, const kvm_ioeventfd& k);
  Status GetIrqchip(int, kvm_irqchip* chip);
  Status SetIrqchip(int, const kvm_irqchip& chip);
  Status GetPit2(int, kvm_pit_state2* pit);
  Status SetPit2(int, const kvm_pit_state2& pit);
  Status GetClock(int, kvm_clock_data* clock) { return Get1("KVM_GET_CLOCK", clock_, clock); }
  Status SetClock(int, const kvm_clock_data& clock);
  // The slot's bits: all of them, cleared unless manual protection is on.
  Status GetDirtyLog(int, const kvm_dirty_log& log);
  Status ClearDirtyLog(int, const kvm_clear_dirty_log& log);
  Status EnableCap(int, const kvm_enable_cap& cap);
  Result<int> CreateVcpu(int, unsigned long id);
  Result<kvm_run*> MapRun(int vcpu_fd, size_t size) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("mmap(kvm_run)")) return *e;
    auto& buf = buffers_.emplace_back(std::make_unique<RunBuffer>(size));
    mapped_[buf->run()] = size;
    run_by_fd_[vcpu_fd] = buf->run();
    return buf->run();
  }
  Status UnmapRun(kvm_run* run, size_t size);
  Status Run(int vcpu_fd);
  Status GetRegs(int fd, kvm_regs* out) { return Get("KVM_GET_REGS", regs_, fd, out); }
  Status SetRegs(int fd, const kvm_regs& in) { return Set("KVM_SET_REGS", regs_, fd, in); }
  Status GetSregs(int fd, kvm_sregs* out) { return Get("KVM_GET_SREGS", sregs_, fd, out); }
  Status SetSregs(int fd, const kvm_sregs& in) { return Set("KVM_SET_SREGS", sregs_, fd, in); }
  Status GetFpu(int fd, kvm_fpu* out) { return Get("KVM_GET_FPU", fpu_, fd, out); }
  Status SetFpu(int fd, const kvm_fpu& in) { return Set("KVM_SET_FPU", fpu_, fd, in); }
  Result<int> GetMsrs(int, kvm_msrs* msrs);
  Result<int> SetMsrs(int, const kvm_msrs& msrs);
  Status SetCpuid2(int fd, const kvm_cpuid2& cpuid);
  Status GetCpuid2(int fd, kvm_cpuid2* cpuid);
  Status GetXsave(int fd, kvm_xsave* x);
  Status GetXsave2(int fd, kvm_xsave* x);
  Status SetXsave(int fd, const kvm_xsave& x);
  Status GetXcrs(int fd, kvm_xcrs* x) { return Get1("KVM_GET_XCRS", vcpu_state_[fd].xcrs, x); }
  Status SetXcrs(int fd, const kvm_xcrs& x);
  Status GetDebugRegs(int fd, kvm_debugregs* r);
  Status SetDebugRegs(int fd, const kvm_debugregs& r);
  Status GetLapic(int fd, kvm_lapic_state* l) { return Get1("KVM_GET_LAPIC", vcpu_state_[fd].lapic, l); }
  Status SetLapic(int fd, const kvm_lapic_state& l);
  Status GetVcpuEvents(int fd, kvm_vcpu_events* ev);
  Status SetVcpuEvents(int fd, const kvm_vcpu_events& ev);
  Status GetMpState(int fd, kvm_mp_state* state);
  Status SetMpState(int fd, const kvm_mp_state& state);

  // A few CPUID leaves as a host reports them; leaf 1 and 0xB carry a foreign APIC ID (0xAB /
  // 0xCD) that KVM_SET_CPUID2 must see replaced by the vCPU index.
  static std::vector<kvm_cpuid_entry2> DefaultCpuid();

 private:
  // Logs the call; returns the injected error when this call is the one to fail.
  std::optional<Error> Enter(const char* op);
  Status Simple(const char* op);
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
  static bool Routed(const RoutingTable& table, uint32_t gsi);
  int Processed(const kvm_msr_entry* entries, uint32_t n) const;
  template <typename T>
  Status Get1(const char* op, const T& from, T* out) {
    std::lock_guard lock(mu_);
    if (auto e = Enter(op)) return *e;
    *out = from;
    return Ok();
  }
  Status MsrList(const char* op, const std::vector<uint32_t>& list, kvm_msr_list* out);

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

  // Defined in fake_kvm.cc (every ON_CALL default, compiled once for the whole suite).
  FakeKvm();

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
