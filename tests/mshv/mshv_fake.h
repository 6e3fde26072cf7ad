// FakeMshv (a stateful model of /dev/mshv with ABI and ordering checks and failure injection),
// MockMshvIoctl delegating to it, and byte-exact hv_message builders for the MSHV suites.
#pragma once

#include <gmock/gmock.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv::test {

// A number as the fake's violation messages spell it.
inline std::string Num(uint64_t v) { return std::to_string(v); }

inline constexpr int kMshvFd = 3;
inline constexpr uint32_t kFirstMsiGsi = 24;
inline constexpr uint32_t kUsableGsis = 2048 - 24;

// One MSHV_ROOT_HVCALL as the kernel saw it: the header and copies of the input bytes.
struct HvcallRecord {
  int fd = -1;
  mshv_root_hvcall call{};
  std::vector<uint8_t> input;
};

// A guest store of `len` bytes of `value` at `gpa` (a doorbell ring, or an MMIO exit).
struct GuestWrite {
  uint64_t gpa = 0;
  uint32_t len = 4;  // 1, 2, 4 or 8
  uint64_t value = 0;
};

// A kernel model. Every method checks the ABI rules it can see (sizes, reserved fields,
// alignment, ordering of irqfd vs routing table) and records a violation instead of failing
// the test itself, so a test (or a whole failure-injection scenario) checks violations() once.
class FakeMshv : public MshvIoctl {
 public:
  struct Partition {
    uint64_t pt_flags = 0;
    bool initialized = false;
    std::map<uint64_t, mshv_user_mem_region> regions;  // by guest_pfn
    std::map<uint32_t, mshv_user_irq_entry> table;     // as last pushed
    std::map<uint32_t, mshv_user_irqfd> irqfds;        // assigned, by gsi
    // GSIs whose DEASSIGN was failed by injection: the kernel drops such an irqfd when its
    // eventfd closes, so a later table without the entry is no ordering violation.
    std::set<uint32_t> orphaned;
    std::vector<std::map<uint32_t, mshv_user_irq_entry>> pushes;
    std::set<uint32_t> cpuid_intercepts;  // leaves with HVCALL_INSTALL_INTERCEPT, in order
    std::vector<uint32_t> intercept_log;   // every install, duplicates included
    // MSHV_IOEVENTFD registrations as mshv_eventfd.c keeps them: each holds its own reference
    // to the eventfd (a dup, closed on deassign or when the partition fd closes, so an
    // ioeventfd whose deassign failed keeps its eventfd alive until then, as in the kernel).
    struct Ioeventfd {
      mshv_user_ioeventfd args{};
      int held_fd = -1;
      uint64_t eventfd_id = 0;  // the eventfd's identity (the kernel's eventfd_ctx)
    };
    std::vector<Ioeventfd> ioeventfds;
    // HVCALL_SET/GET_PARTITION_PROPERTY values (REFERENCE_TIME, TIME_FREEZE,
    // GPA_PAGE_ACCESS_TRACKING ...), by hv_partition_property_code; unset ones read as 0.
    std::map<uint32_t, uint64_t> properties;
    std::vector<std::pair<uint32_t, uint64_t>> property_writes;  // every SET, in order
    // Guest page numbers the guest wrote since their dirty bit was last cleared (a test plays
    // the guest by inserting; kept only while GPA_PAGE_ACCESS_TRACKING is 1).
    std::set<uint64_t> dirty_pfns;
    std::vector<mshv_gpap_access_bitmap> bitmap_reads;  // every MSHV_GET_GPAP_ACCESS_BITMAP
  };
  struct Vp {
    int partition_fd = -1;
    uint32_t index = 0;
    std::map<uint32_t, hv_register_value> registers;
    // MSHV_GET/SET_VP_STATE data: the XSAVE area's size is the partition's maximum XSAVE data
    // size (a test may resize it); the LAPIC state is one page.
    std::vector<uint8_t> xsave = std::vector<uint8_t>(4096, 0);
    std::vector<uint8_t> lapic = std::vector<uint8_t>(4096, 0);
    std::deque<mshv_run_vp> messages;  // MSHV_RUN_VP answers; ENODATA when empty
    int wake_fd = -1;                   // eventfd a run in StartupSuspend sleeps on
    int sleeping_runs = 0;              // MSHV_RUN_VP calls that slept so far
    // Stores the guest makes before the queued messages: MSHV_RUN_VP plays the hypervisor on
    // each (a matching doorbell is signalled and the VP goes on without leaving the run; any
    // other store ends the run as HVMSG_UNMAPPED_GPA for `mov [rax], rcx` of its width, RCX
    // holding the value).
    std::deque<GuestWrite> guest_writes;
  };
  using CpuidKey = std::pair<uint32_t, uint32_t>;  // (EAX, ECX)

  // The hypervisor's CPUID: DefaultHostCpuid() unless a test changes host_cpuid(). Per VP the
  // fake reports the VP index as APIC ID (leaf 1 EBX[31:24], leaves 0xB/0x1F EDX), as the
  // hypervisor does; (EAX, ECX) pairs not in the map read as zeros.
  static std::map<CpuidKey, hv_output_get_vp_cpuid_values> DefaultHostCpuid();

  FakeMshv();
  ~FakeMshv() override;

  Result<int> Open(const char* path) override;
  Status Close(int fd) override;
  Result<int> CreatePartition(int mshv_fd, const mshv_create_partition& args) override;
  Status InitializePartition(int partition_fd) override;
  Result<int> CreateVp(int partition_fd, const mshv_create_vp& args) override;
  Status SetGuestMemory(int partition_fd, const mshv_user_mem_region& region) override;
  Status Irqfd(int partition_fd, const mshv_user_irqfd& args) override;
  Status Ioeventfd(int partition_fd, const mshv_user_ioeventfd& args) override;
  Status SetMsiRouting(int partition_fd, const mshv_user_irq_table& table) override;
  Status GetGpapAccessBitmap(int partition_fd, mshv_gpap_access_bitmap* args) override;
  Status RootHvcall(int fd, mshv_root_hvcall* call) override;
  Status RunVp(int vp_fd, mshv_run_vp* run) override;
  Status GetVpState(int vp_fd, mshv_get_set_vp_state* state) override;
  Status SetVpState(int vp_fd, const mshv_get_set_vp_state& state) override;

  // Makes the `nth` (0-based) later call of `method` ("Open", "SetMsiRouting" ...) fail with
  // `err` (and, for RootHvcall, hypervisor status `hv_status`). One failure at a time.
  void FailNext(const std::string& method, int nth = 0, int err = EIO, uint16_t hv_status = 0);
  // Plays the hypervisor's LAPIC taking INIT then SIPI `vector` for VP `vp_index` (sent by the
  // BSP's guest through its ICR; nothing reaches the VMM): if the VP is in StartupSuspend, sets
  // CS = {base vector << 12, limit 0xFFFF, selector vector << 8, attributes 0x9B}, RIP = 0,
  // clears HV_REGISTER_INTERNAL_ACTIVITY_STATE and wakes its sleeping MSHV_RUN_VP. Returns
  // whether the VP was waiting (a SIPI to a running VP is ignored, as on hardware).
  bool StartupIpi(uint32_t vp_index, uint8_t vector);
  // Blocks until a MSHV_RUN_VP of VP `vp_index` has gone to sleep `count` times in total.
  void WaitForSleepingRun(uint32_t vp_index, int count = 1);
  // Plays the hypervisor on a store of the partition's guest: if an ioeventfd matches it (same
  // address; len 0 or the store's width; no DATAMATCH or the value), signals that eventfd and
  // returns true; false when the store would be an intercept.
  bool GuestMmioWrite(int partition_fd, const GuestWrite& write);
  // Appends stores for VP `vp_index`'s next MSHV_RUN_VPs, and a message after them.
  void QueueGuestWrites(uint32_t vp_index, const std::vector<GuestWrite>& writes);
  void QueueMessage(uint32_t vp_index, const mshv_run_vp& message);
  void ClearFailure();
  // Calls per method name so far.
  int calls(const std::string& method) const;

  // All accessors below must be used without concurrent calls into the fake.
  std::set<int>& open_fds() { return open_fds_; }
  std::map<int, Partition>& partitions() { return partitions_; }
  std::map<int, Vp>& vps() { return vps_; }
  std::vector<std::string>& violations() { return violations_; }
  std::vector<std::string>& log() { return log_; }  // "irqfd assign 24", "push 24,25" ...
  std::vector<HvcallRecord>& hvcalls() { return hvcalls_; }
  // Every MSHV_IOEVENTFD argument received (failed ones included), in order.
  std::vector<mshv_user_ioeventfd>& ioeventfd_calls() { return ioeventfd_calls_; }
  std::map<CpuidKey, hv_output_get_vp_cpuid_values>& host_cpuid() { return host_cpuid_; }
  Partition& only_partition();
  Vp& vp(uint32_t index);

 private:
  bool ShouldFail(const char* method, int* err, uint16_t* hv_status = nullptr);
  void Violation(std::string what) { violations_.push_back(std::move(what)); }
  // The partition (and its fd) that `fd` is, or whose VP `fd` is; nullptr if neither.
  Partition* PartitionOf(int fd, int* partition_fd);
  Vp* VpOf(int partition_fd, uint32_t vp_index);
  // Hypercall models (mshv_fake_hvcall.cc); `in` holds call->in_sz bytes.
  Status RegisterHvcall(Vp& vp, mshv_root_hvcall* call, const std::vector<uint8_t>& in);
  Status InstallInterceptHvcall(Partition& p, mshv_root_hvcall* call,
                                const std::vector<uint8_t>& in);
  Status GetVpCpuidValuesHvcall(int partition_fd, mshv_root_hvcall* call,
                                const std::vector<uint8_t>& in);
  // Partition property models (mshv_fake_state.cc).
  Status PropertyHvcall(int fd, Partition& p, mshv_root_hvcall* call,
                        const std::vector<uint8_t>& in);
  // Ioeventfd models (mshv_fake_ioeventfd.cc).
  Status AssignIoeventfd(Partition& p, const mshv_user_ioeventfd& args);
  Status DeassignIoeventfd(Partition& p, const mshv_user_ioeventfd& args);
  bool RingDoorbell(Partition& p, const GuestWrite& write);
  static void ReleaseIoeventfds(Partition& p);
  static bool InStartupSuspend(Vp& vp);
  void CloseWakeFd(Vp& vp);

  mutable std::mutex mu_;
  int next_fd_ = 10;
  std::set<int> open_fds_;
  std::map<int, Partition> partitions_;
  std::map<int, Vp> vps_;
  std::vector<std::string> violations_;
  std::vector<std::string> log_;
  std::vector<HvcallRecord> hvcalls_;
  std::vector<mshv_user_ioeventfd> ioeventfd_calls_;
  std::map<CpuidKey, hv_output_get_vp_cpuid_values> host_cpuid_;
  std::condition_variable slept_;  // notified (under mu_) when a run goes to sleep
  std::map<std::string, int> calls_;
  std::string fail_method_;
  int fail_at_ = -1;
  int fail_errno_ = 0;
  uint16_t fail_status_ = 0;
};

class MockMshvIoctl : public MshvIoctl {
 public:
  MOCK_METHOD(Result<int>, Open, (const char* path), (override));
  MOCK_METHOD(Status, Close, (int fd), (override));
  MOCK_METHOD(Result<int>, CreatePartition, (int mshv_fd, const mshv_create_partition& args),
              (override));
  MOCK_METHOD(Status, InitializePartition, (int partition_fd), (override));
  MOCK_METHOD(Result<int>, CreateVp, (int partition_fd, const mshv_create_vp& args), (override));
  MOCK_METHOD(Status, SetGuestMemory, (int partition_fd, const mshv_user_mem_region& region),
              (override));
  MOCK_METHOD(Status, Irqfd, (int partition_fd, const mshv_user_irqfd& args), (override));
  MOCK_METHOD(Status, Ioeventfd, (int partition_fd, const mshv_user_ioeventfd& args),
              (override));
  MOCK_METHOD(Status, SetMsiRouting, (int partition_fd, const mshv_user_irq_table& table),
              (override));
  MOCK_METHOD(Status, GetGpapAccessBitmap, (int partition_fd, mshv_gpap_access_bitmap* args),
              (override));
  MOCK_METHOD(Status, RootHvcall, (int fd, mshv_root_hvcall* call), (override));
  MOCK_METHOD(Status, RunVp, (int vp_fd, mshv_run_vp* run), (override));
  MOCK_METHOD(Status, GetVpState, (int vp_fd, mshv_get_set_vp_state* state), (override));
  MOCK_METHOD(Status, SetVpState, (int vp_fd, const mshv_get_set_vp_state& state), (override));

  // Every call not given an EXPECT_CALL / ON_CALL of its own goes to `fake`.
  void DelegateTo(FakeMshv& fake);
};

// Entries of an mshv_user_irq_table (the flexible array after the 8-byte header).
std::vector<mshv_user_irq_entry> TableEntries(const mshv_user_irq_table& table);

// The input of HVCALL_SET_VP_REGISTERS for VP `vp_index`: the 16-byte header, then one 32-byte
// assoc {name, 0, 0, value} per register, byte by byte.
std::vector<uint8_t> SetRegistersInput(uint32_t vp_index,
                                       std::initializer_list<std::pair<uint32_t, uint64_t>> regs);

// ---- hv_message builders: bytes written at the reference's offsets, not through our structs.
void PutLe(uint8_t* buf, size_t offset, uint64_t value, size_t bytes);

// Intercept header fields shared by the builders (payload offsets 0-39).
struct InterceptHeader {
  uint32_t vp_index = 0;
  uint8_t instruction_length = 0;
  uint8_t access_type = 0;  // read 0, write 1, execute 2
  uint16_t execution_state = (1u << 2) | (1u << 4);  // cr0_pe | efer_lma
  uint16_t cs_attributes = 1u << 13;                  // long mode code segment
  uint64_t rip = 0x1000;
  uint64_t rflags = 0x2;
};

mshv_run_vp IoPortMessage(const InterceptHeader& h, uint16_t port, uint8_t access_info,
                          uint64_t rax, uint8_t payload_size = 128);
mshv_run_vp MemoryMessage(uint32_t type, const InterceptHeader& h, uint64_t gpa,
                          const std::vector<uint8_t>& instruction, uint8_t payload_size = 80);
mshv_run_vp PlainMessage(uint32_t type, uint8_t payload_size);
// HVMSG_X64_CPUID_INTERCEPT: the guest's EAX/ECX and the hypervisor's default result (payload
// offsets 40..103).
struct CpuidDefault {
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0;
};
mshv_run_vp CpuidMessage(const InterceptHeader& h, uint64_t rax, uint64_t rcx,
                         const CpuidDefault& result, uint8_t payload_size = 104);

}  // namespace virt::mshv::test
