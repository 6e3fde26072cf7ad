// MockWhpApi plus FakeWhp: a stateful default for every WHv call (handles, vCPUs, triggers and
// their events, registers, scripted exits, sticky cancel, failure injection, a call log) shared
// by the WHP mock suites.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fake_whp_cpuid.h"
#include "virt/whp/whp_api.h"

#ifndef _WIN32
#include <unistd.h>  // issue 11: FakeWhp::GuestWrite signals an eventfd as WHP sets an event
#endif

namespace virt::whp::test {

// Its constructor and destructor are defined once, in fake_whp.cc: they instantiate the
// machinery of every mocked method, which would otherwise be compiled into each test file.
class MockWhpApi : public WhpApi {
 public:
  MockWhpApi();
  ~MockWhpApi() override;
  MOCK_METHOD(Status, GetCapability,
              (WHV_CAPABILITY_CODE code, void* buffer, uint32_t size, uint32_t* written),
              (override));
  MOCK_METHOD(Result<WHV_PARTITION_HANDLE>, CreatePartition, (), (override));
  MOCK_METHOD(Status, SetPartitionProperty,
              (WHV_PARTITION_HANDLE partition, WHV_PARTITION_PROPERTY_CODE code,
               const void* buffer, uint32_t size),
              (override));
  MOCK_METHOD(Status, SetupPartition, (WHV_PARTITION_HANDLE partition), (override));
  MOCK_METHOD(Status, DeletePartition, (WHV_PARTITION_HANDLE partition), (override));
  MOCK_METHOD(Status, MapGpaRange,
              (WHV_PARTITION_HANDLE partition, void* source,
               WHV_GUEST_PHYSICAL_ADDRESS guest_address, uint64_t size,
               WHV_MAP_GPA_RANGE_FLAGS flags),
              (override));
  MOCK_METHOD(Status, UnmapGpaRange,
              (WHV_PARTITION_HANDLE partition, WHV_GUEST_PHYSICAL_ADDRESS guest_address,
               uint64_t size),
              (override));
  MOCK_METHOD(Status, CreateVirtualProcessor,
              (WHV_PARTITION_HANDLE partition, uint32_t index, uint32_t flags), (override));
  MOCK_METHOD(Status, DeleteVirtualProcessor, (WHV_PARTITION_HANDLE partition, uint32_t index),
              (override));
  MOCK_METHOD(Status, RunVirtualProcessor,
              (WHV_PARTITION_HANDLE partition, uint32_t index, WHV_RUN_VP_EXIT_CONTEXT* exit),
              (override));
  MOCK_METHOD(Status, CancelRunVirtualProcessor,
              (WHV_PARTITION_HANDLE partition, uint32_t index, uint32_t flags), (override));
  MOCK_METHOD(Status, GetVirtualProcessorRegisters,
              (WHV_PARTITION_HANDLE partition, uint32_t index, const WHV_REGISTER_NAME* names,
               uint32_t count, WHV_REGISTER_VALUE* values),
              (override));
  MOCK_METHOD(Status, SetVirtualProcessorRegisters,
              (WHV_PARTITION_HANDLE partition, uint32_t index, const WHV_REGISTER_NAME* names,
               uint32_t count, const WHV_REGISTER_VALUE* values),
              (override));
  MOCK_METHOD(Status, RequestInterrupt,
              (WHV_PARTITION_HANDLE partition, const WHV_INTERRUPT_CONTROL& control),
              (override));
  MOCK_METHOD(bool, HasTriggers, (), (const, override));
  MOCK_METHOD(Status, CreateTrigger,
              (WHV_PARTITION_HANDLE partition, const WHV_TRIGGER_PARAMETERS& parameters,
               WHV_TRIGGER_HANDLE* trigger, HANDLE* event),
              (override));
  MOCK_METHOD(Status, UpdateTriggerParameters,
              (WHV_PARTITION_HANDLE partition, const WHV_TRIGGER_PARAMETERS& parameters,
               WHV_TRIGGER_HANDLE trigger),
              (override));
  MOCK_METHOD(Status, DeleteTrigger, (WHV_PARTITION_HANDLE partition, WHV_TRIGGER_HANDLE trigger),
              (override));
  MOCK_METHOD(bool, HasCpuidOutput, (), (const, override));
  MOCK_METHOD(Status, GetVirtualProcessorCpuidOutput,
              (WHV_PARTITION_HANDLE partition, uint32_t index, uint32_t eax, uint32_t ecx,
               WHV_CPUID_OUTPUT* output),
              (override));
  // Issue 12: vCPU state, partition time, dirty log.
  MOCK_METHOD(Status, GetPartitionProperty,
              (WHV_PARTITION_HANDLE partition, WHV_PARTITION_PROPERTY_CODE code, void* buffer,
               uint32_t size, uint32_t* written),
              (override));
  MOCK_METHOD(Status, SuspendPartitionTime, (WHV_PARTITION_HANDLE partition), (override));
  MOCK_METHOD(Status, ResumePartitionTime, (WHV_PARTITION_HANDLE partition), (override));
  MOCK_METHOD(Status, GetVirtualProcessorXsaveState,
              (WHV_PARTITION_HANDLE partition, uint32_t index, void* buffer, uint32_t size,
               uint32_t* written),
              (override));
  MOCK_METHOD(Status, SetVirtualProcessorXsaveState,
              (WHV_PARTITION_HANDLE partition, uint32_t index, const void* buffer, uint32_t size),
              (override));
  MOCK_METHOD(Status, GetVirtualProcessorInterruptControllerState2,
              (WHV_PARTITION_HANDLE partition, uint32_t index, void* buffer, uint32_t size,
               uint32_t* written),
              (override));
  MOCK_METHOD(Status, SetVirtualProcessorInterruptControllerState2,
              (WHV_PARTITION_HANDLE partition, uint32_t index, const void* buffer, uint32_t size),
              (override));
  MOCK_METHOD(Status, QueryGpaRangeDirtyBitmap,
              (WHV_PARTITION_HANDLE partition, uint64_t guest_address, uint64_t size,
               uint64_t* bitmap, uint32_t bitmap_bytes),
              (override));
  // Issue 11: doorbells.
  MOCK_METHOD(bool, HasDoorbells, (), (const, override));
  MOCK_METHOD(Status, RegisterPartitionDoorbellEvent,
              (WHV_PARTITION_HANDLE partition, const WHV_DOORBELL_MATCH_DATA& match,
               HANDLE event),
              (override));
  MOCK_METHOD(Status, UnregisterPartitionDoorbellEvent,
              (WHV_PARTITION_HANDLE partition, const WHV_DOORBELL_MATCH_DATA& match),
              (override));
  MOCK_METHOD(Status, SetEvent, (HANDLE event), (override));
  MOCK_METHOD(Status, CloseHandle, (HANDLE handle), (override));
};

// An HRESULT failure as the real layer reports it.
inline Error HresultError(const char* op, int32_t hr) {
  Error error = Error::Make(ErrorCode::kNative, op);
  error.domain = NativeDomain::kHresult;
  error.native_code = static_cast<int64_t>(static_cast<uint32_t>(hr));
  return error;
}

// Compares two WHV_INTERRUPT_CONTROLs field by field (the bit-fields have no operator==).
inline bool SameControl(const WHV_INTERRUPT_CONTROL& a, const WHV_INTERRUPT_CONTROL& b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// A tiny in-memory WHP: every MockWhpApi call gets a behaving default (set up by Install, which
// the constructor calls), so a test states only the expectations it is about. Thread-safe.
class FakeWhp {
 public:
  struct Trigger {
    WHV_PARTITION_HANDLE partition = nullptr;
    WHV_TRIGGER_PARAMETERS parameters{};
    HANDLE event = nullptr;
  };
  struct Mapping {
    void* source = nullptr;
    uint64_t guest_address = 0;
    uint64_t size = 0;
    uint32_t flags = 0;
  };
  struct Vp {
    std::map<uint32_t, WHV_REGISTER_VALUE> registers;
    bool cancel_pending = false;  // WHvCancelRunVirtualProcessor is sticky
    std::deque<WHV_RUN_VP_EXIT_CONTEXT> exits;
    std::vector<uint8_t> xsave;  // issue 12
    std::vector<uint8_t> lapic;  // issue 12
  };

  // Installs every default (Install, InstallDoorbells; defined in fake_whp.cc, compiled once).
  explicit FakeWhp(std::shared_ptr<testing::NiceMock<MockWhpApi>> api = nullptr);

  testing::NiceMock<MockWhpApi>& mock() { return *api_; }
  std::shared_ptr<WhpApi> api() const { return api_; }

  // Makes the next call of `method` (the WHv name without "WHv", e.g. "CreateTrigger", or
  // "SetEvent"/"CloseHandle") fail with `hr` once; with `skip`, the call after `skip` more.
  void FailNext(const std::string& method, int32_t hr = kHrInvalidArg, int skip = 0) {
    std::lock_guard lock(mu_);
    fail_next_[method] = {hr, skip};
  }

  // Waits until the log holds at least `n` calls of `method`; false on timeout.
  bool WaitForCalls(const std::string& method, int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return CountLocked(method) >= n; });
  }

  // Whether a FailNext for `method` has not been consumed yet.
  bool failure_pending(const std::string& method) const {
    std::lock_guard lock(mu_);
    return fail_next_.contains(method);
  }

  // How many calls of `method` the log holds.
  int CountCalls(const std::string& method) const {
    std::lock_guard lock(mu_);
    return CountLocked(method);
  }

 private:
  int CountLocked(const std::string& method) const {
    int n = 0;
    for (const std::string& entry : log_) {
      if (entry == method || entry.starts_with(method + "(")) ++n;
    }
    return n;
  }

 public:

  // What happened, in order: "CreatePartition", "SetPartitionProperty(0x1fff)",
  // "CreateTrigger", "SetEvent", "DeleteTrigger", "CloseHandle" ...
  std::vector<std::string> log() const {
    std::lock_guard lock(mu_);
    return log_;
  }
  void ClearLog() {
    std::lock_guard lock(mu_);
    log_.clear();
  }

  // Queues an exit for the next RunVirtualProcessor of vCPU `index`.
  void QueueExit(uint32_t index, const WHV_RUN_VP_EXIT_CONTEXT& exit) {
    std::lock_guard lock(mu_);
    vps_[index].exits.push_back(exit);
  }

  // While set, RunVirtualProcessor blocks until a cancel is pending (then returns Canceled),
  // so a test can cancel a vCPU that is inside Run from another thread.
  void set_run_blocks(bool value) {
    std::lock_guard lock(mu_);
    run_blocks_ = value;
  }
  // Waits until a RunVirtualProcessor is blocked (see set_run_blocks); false on timeout.
  bool WaitUntilRunning(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return running_ > 0; });
  }
  // Waits until `n` RunVirtualProcessor calls are held in StartupSuspend; false on timeout.
  bool WaitUntilSuspendedInRun(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return suspended_ >= n; });
  }
  // Waits until at least `n` WHvRequestInterrupt calls were made; false on timeout.
  bool WaitForRequested(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return requested_.size() >= n; });
  }

  void set_has_triggers(bool value) {
    std::lock_guard lock(mu_);
    has_triggers_ = value;
  }
  void set_local_apic_emulation(bool value) {
    std::lock_guard lock(mu_);
    local_apic_emulation_ = value;
  }
  void set_dirty_page_tracking(bool value) {  // issue 12
    std::lock_guard lock(mu_);
    dirty_page_tracking_ = value;
  }
  void set_hypervisor_present(bool value) {
    std::lock_guard lock(mu_);
    hypervisor_present_ = value;
  }
  // WHvCapabilityCodeExtendedVmExits (default: CPUID, MSR, exception exits and the INIT/SIPI
  // trap).
  void set_extended_vm_exits(uint64_t value) {
    std::lock_guard lock(mu_);
    extended_vm_exits_ = value;
  }
  void set_has_cpuid_output(bool value) {
    std::lock_guard lock(mu_);
    has_cpuid_output_ = value;
  }
  // Changes what every VP reads for CPUID(function, index) (see FakeCpuidModel::Set).
  void SetCpuidLeaf(uint32_t function, uint32_t index, bool indexed, WHV_CPUID_OUTPUT out) {
    std::lock_guard lock(mu_);
    cpuid_.Set(function, index, indexed, out);
  }
  // What VP `vp` reads for CPUID(function, index), as WHvGetVirtualProcessorCpuidOutput answers.
  WHV_CPUID_OUTPUT CpuidOf(uint32_t vp, uint32_t function, uint32_t index) const {
    std::lock_guard lock(mu_);
    return ReadCpuid(vp, function, index);
  }

  // State for assertions.
  std::set<WHV_PARTITION_HANDLE> live_partitions() const { return Locked(live_partitions_); }
  std::set<HANDLE> open_handles() const { return Locked(open_handles_); }
  std::map<WHV_TRIGGER_HANDLE, Trigger> triggers() const { return Locked(triggers_); }
  std::set<uint32_t> live_vps() const { return Locked(live_vps_); }
  std::map<uint64_t, Mapping> mappings() const { return Locked(mappings_); }
  // Property writes, by code, the last value's bytes.
  std::map<uint32_t, std::vector<uint8_t>> properties() const { return Locked(properties_); }
  std::vector<WHV_INTERRUPT_CONTROL> requested() const { return Locked(requested_); }
  // Interrupts delivered through trigger events (SetEvent on a live trigger's event).
  std::vector<WHV_INTERRUPT_CONTROL> delivered() const { return Locked(delivered_); }
  // Also hands each delivery to `hook` (under the fake's lock; the route-churn stress counts them).
  void SetDeliveryHook(std::function<void(const WHV_INTERRUPT_CONTROL&)> hook) {
    std::lock_guard lock(mu_);
    delivery_hook_ = std::move(hook);
  }
  WHV_REGISTER_VALUE reg(uint32_t index, WHV_REGISTER_NAME name) {
    std::lock_guard lock(mu_);
    return vps_[index].registers[name];
  }
  void set_reg(uint32_t index, WHV_REGISTER_NAME name, uint64_t value) {
    std::lock_guard lock(mu_);
    WHV_REGISTER_VALUE v{};
    v.Reg64 = value;
    vps_[index].registers[name] = v;
  }
  // Issue 12: the fake's XSAVE area and LAPIC page of each VP (what WHvGet...XsaveState /
  // InterruptControllerState2 return; a new VP starts with kFakeXsaveSize / kFakeLapicSize
  // bytes of a pattern), the reference time, and guest pages written since their last query.
  static constexpr uint32_t kFakeXsaveSize = 4096 + 64;  // more than a page: AVX-512-sized
  static constexpr uint32_t kFakeLapicSize = 4096;
  std::vector<uint8_t> xsave(uint32_t index) {
    std::lock_guard lock(mu_);
    return vps_[index].xsave;
  }
  std::vector<uint8_t> lapic(uint32_t index) {
    std::lock_guard lock(mu_);
    return vps_[index].lapic;
  }
  void set_reference_time(uint64_t ticks) {
    std::lock_guard lock(mu_);
    reference_time_ = ticks;
  }
  uint64_t reference_time() const { return Locked(reference_time_); }
  bool time_suspended() const { return Locked(time_suspended_); }
  // The guest wrote the page holding `gpa`.
  void MarkDirty(uint64_t gpa) {
    std::lock_guard lock(mu_);
    dirty_pages_.insert(gpa / 4096);
  }
  std::set<uint64_t> dirty_pages() const { return Locked(dirty_pages_); }

  bool cancel_pending(uint32_t index) {
    std::lock_guard lock(mu_);
    return vps_[index].cancel_pending;
  }

  // Nothing a test created is still alive: no partition, trigger or handle.
  void ExpectNothingLeaked() const {
    std::lock_guard lock(mu_);
    EXPECT_TRUE(live_partitions_.empty()) << live_partitions_.size() << " partition(s) left";
    EXPECT_TRUE(triggers_.empty()) << triggers_.size() << " trigger(s) left";
    EXPECT_TRUE(open_handles_.empty()) << open_handles_.size() << " handle(s) left open";
  }

 private:
  template <typename T>
  T Locked(const T& value) const {
    std::lock_guard lock(mu_);
    return value;
  }

  // Under mu_: logs the call and consumes an injected failure for it.
  std::optional<Error> Enter(const std::string& method, const std::string& entry) {
    log_.push_back(entry.empty() ? method : entry);
    changed_.notify_all();  // for WaitForCalls
    auto it = fail_next_.find(method);
    if (it == fail_next_.end()) return std::nullopt;
    if (it->second.second > 0) {
      --it->second.second;
      return std::nullopt;
    }
    const int32_t hr = it->second.first;
    fail_next_.erase(it);
    return HresultError(OpName(method), hr);
  }

  // Under mu_: the model's CPUID with the partition's CpuidResultList (0x1004) applied, which
  // replaces a whole leaf for every sub-leaf.
  WHV_CPUID_OUTPUT ReadCpuid(uint32_t vp, uint32_t function, uint32_t index) const {
    if (auto it = properties_.find(WHvPartitionPropertyCodeCpuidResultList);
        it != properties_.end()) {
      const size_t n = it->second.size() / sizeof(WHV_X64_CPUID_RESULT);
      for (size_t i = 0; i < n; ++i) {
        WHV_X64_CPUID_RESULT r{};
        std::memcpy(&r, it->second.data() + i * sizeof r, sizeof r);
        if (r.Function == function) return {r.Eax, r.Ebx, r.Ecx, r.Edx};
      }
    }
    return cpuid_.Read(function, index, vp);
  }

  // Under mu_: whether the partition emulates the LAPIC (LocalApicEmulationMode != None).
  bool LapicEmulated() const {
    auto it = properties_.find(WHvPartitionPropertyCodeLocalApicEmulationMode);
    if (it == properties_.end() || it->second.size() < sizeof(uint32_t)) return false;
    uint32_t mode = 0;
    std::memcpy(&mode, it->second.data(), sizeof mode);
    return mode != WHvX64LocalApicEmulationModeNone;
  }

  uint64_t& Activity(uint32_t vp) {
    return vps_[vp].registers[WHvRegisterInternalActivityState].Reg64;
  }

  // Under mu_: what WHP's LAPIC does with a requested INIT or SIPI on a physical destination:
  // INIT parks the VP in StartupSuspend; a SIPI to a parked VP starts it in real mode at
  // CS = vector << 8 (base vector << 12), IP 0, and wakes its run.
  void ApplyInitSipi(const WHV_INTERRUPT_CONTROL& control) {
    if (control.DestinationMode != WHvX64InterruptDestinationModePhysical) return;
    const uint32_t vp = control.Destination;
    if (!live_vps_.contains(vp)) return;
    if (control.Type == WHvX64InterruptTypeInit) {
      Activity(vp) = 1;
    } else if (control.Type == WHvX64InterruptTypeSipi && (Activity(vp) & 1) != 0) {
      auto& regs = vps_[vp].registers;
      WHV_REGISTER_VALUE cs{};
      cs.Segment.Base = uint64_t{control.Vector} << 12;
      cs.Segment.Limit = 0xFFFF;
      cs.Segment.Selector = static_cast<UINT16>(control.Vector << 8);
      cs.Segment.Attributes = 0x9B;
      regs[WHvX64RegisterCs] = cs;
      regs[WHvX64RegisterRip] = WHV_REGISTER_VALUE{};
      Activity(vp) = 0;
    }
    changed_.notify_all();
  }

  // The operation name the real layer reports for `method` (a static string).
  static const char* OpName(const std::string& method) {
    static const char* const kNames[] = {
        "WHvGetCapability", "WHvCreatePartition", "WHvSetPartitionProperty",
        "WHvSetupPartition", "WHvDeletePartition", "WHvMapGpaRange", "WHvUnmapGpaRange",
        "WHvCreateVirtualProcessor", "WHvDeleteVirtualProcessor", "WHvRunVirtualProcessor",
        "WHvCancelRunVirtualProcessor", "WHvGetVirtualProcessorRegisters",
        "WHvSetVirtualProcessorRegisters", "WHvRequestInterrupt", "WHvCreateTrigger",
        "WHvUpdateTriggerParameters", "WHvDeleteTrigger", "WHvGetVirtualProcessorCpuidOutput",
        // Issue 12.
        "WHvGetPartitionProperty", "WHvSuspendPartitionTime", "WHvResumePartitionTime",
        "WHvGetVirtualProcessorXsaveState", "WHvSetVirtualProcessorXsaveState",
        "WHvGetVirtualProcessorInterruptControllerState2",
        "WHvSetVirtualProcessorInterruptControllerState2", "WHvQueryGpaRangeDirtyBitmap"};
    for (const char* name : kNames) {
      if (method == name + 3) return name;
    }
    if (method == "SetEvent") return "SetEvent";
    if (method == "CloseHandle") return "CloseHandle";
    if (method == "RegisterPartitionDoorbellEvent") return "WHvRegisterPartitionDoorbellEvent";
    if (method == "UnregisterPartitionDoorbellEvent") {  // issue 11
      return "WHvUnregisterPartitionDoorbellEvent";
    }
    ADD_FAILURE() << "FakeWhp: unknown method " << method;
    return "unknown";
  }

  void* NewHandle() { return reinterpret_cast<void*>(next_handle_++ * 0x10); }

  void Install();  // defined in fake_whp.cc

  // Issue 12: defaults for the state, time and dirty-log calls.
  void InstallStateCalls();  // defined in fake_whp.cc

  std::shared_ptr<testing::NiceMock<MockWhpApi>> api_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  bool run_blocks_ = false;
  int running_ = 0;
  int suspended_ = 0;  // runs held in StartupSuspend
  uintptr_t next_handle_ = 1;
  bool has_triggers_ = true;
  bool local_apic_emulation_ = true;
  bool hypervisor_present_ = true;
  bool has_cpuid_output_ = true;
  bool dirty_page_tracking_ = true;  // issue 12
  uint64_t extended_vm_exits_ = 0x47;  // X64CpuidExit, X64MsrExit, ExceptionExit, InitSipi trap
  FakeCpuidModel cpuid_;
  std::map<std::string, std::pair<int32_t, int>> fail_next_;  // hr, calls to let pass first
  std::vector<std::string> log_;
  std::set<WHV_PARTITION_HANDLE> live_partitions_;
  std::set<uint32_t> live_vps_;
  std::map<uint32_t, Vp> vps_;
  std::map<uint64_t, Mapping> mappings_;
  std::map<uint32_t, std::vector<uint8_t>> properties_;
  std::map<WHV_TRIGGER_HANDLE, Trigger> triggers_;
  std::set<HANDLE> open_handles_;
  std::vector<WHV_INTERRUPT_CONTROL> requested_;
  std::vector<WHV_INTERRUPT_CONTROL> delivered_;
  uint64_t reference_time_ = 0;   // issue 12
  bool time_suspended_ = false;   // issue 12
  std::set<uint64_t> dirty_pages_;  // issue 12: page numbers

  // Issue 11 (doorbells): WHvRegister/UnregisterPartitionDoorbellEvent as WHP documents them.
 public:
  // A registration as WHP holds it.
  struct Doorbell {
    WHV_PARTITION_HANDLE partition = nullptr;
    WHV_DOORBELL_MATCH_DATA match{};
    HANDLE event = nullptr;
  };
  // One doorbell call with its exact arguments (event is nullptr for an unregister).
  struct DoorbellCall {
    bool registers = true;
    WHV_PARTITION_HANDLE partition = nullptr;
    WHV_DOORBELL_MATCH_DATA match{};
    HANDLE event = nullptr;
  };

  void set_has_doorbells(bool value) {
    std::lock_guard lock(mu_);
    has_doorbells_ = value;
  }
  // The doorbells registered on live partitions (WHvDeletePartition drops a partition's).
  std::vector<Doorbell> doorbells() const {
    std::lock_guard lock(mu_);
    std::vector<Doorbell> out;
    for (const Doorbell& d : doorbells_) {
      if (live_partitions_.contains(d.partition)) out.push_back(d);
    }
    return out;
  }
  // Every doorbell call made, failed ones included, in order.
  std::vector<DoorbellCall> doorbell_calls() const { return Locked(doorbell_calls_); }
  // A guest store of `length` bytes of `value` at `gpa`: when a doorbell of a live partition
  // matches it, WHP sets that doorbell's event (a SetEvent on Windows, an eventfd write in the
  // Linux build) and the VP does not exit: returns true. False: the VP would exit.
  bool GuestWrite(uint64_t gpa, uint32_t length, uint64_t value) {
    std::lock_guard lock(mu_);
    const uint64_t mask = length >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * length)) - 1;
    for (const Doorbell& d : doorbells_) {
      const WHV_DOORBELL_MATCH_DATA& m = d.match;
      if (!live_partitions_.contains(d.partition) || m.GuestAddress != gpa) continue;
      if (m.MatchOnLength && m.Length != length) continue;
      if (m.MatchOnValue && m.Value != (value & mask)) continue;
#ifdef _WIN32
      ::SetEvent(d.event);
#else
      const uint64_t one = 1;
      EXPECT_EQ(::write(static_cast<int>(reinterpret_cast<intptr_t>(d.event)), &one, sizeof one),
                static_cast<ssize_t>(sizeof one));
#endif
      return true;
    }
    return false;
  }
  static bool SameMatch(const WHV_DOORBELL_MATCH_DATA& a, const WHV_DOORBELL_MATCH_DATA& b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
  }

 private:
  // E_INVALIDARG cases of WHvRegisterPartitionDoorbellEvent.
  static bool Malformed(const WHV_DOORBELL_MATCH_DATA& m) {
    if (m.Reserved != 0) return true;
    if (m.MatchOnLength) {
      if (m.Length != 1 && m.Length != 2 && m.Length != 4 && m.Length != 8) return true;
    } else if (m.Length != 0 || m.MatchOnValue) {
      return true;
    }
    return !m.MatchOnValue && m.Value != 0;
  }
  // ERROR_HV_INVALID_PARAMETER: same address and identical, or another length, or either one
  // matches any value.
  static bool Conflicts(const WHV_DOORBELL_MATCH_DATA& a, const WHV_DOORBELL_MATCH_DATA& b) {
    if (a.GuestAddress != b.GuestAddress) return false;
    if (SameMatch(a, b) || !a.MatchOnValue || !b.MatchOnValue) return true;
    return a.MatchOnLength != b.MatchOnLength || a.Length != b.Length;
  }

  void InstallDoorbells();  // defined in fake_whp.cc

  bool has_doorbells_ = true;
  std::vector<Doorbell> doorbells_;  // in registration order; stale ones pruned on unregister
  std::vector<DoorbellCall> doorbell_calls_;
  // Route-churn stress (issue 14).
  std::function<void(const WHV_INTERRUPT_CONTROL&)> delivery_hook_;
};

}  // namespace virt::whp::test
