// FuzzWhpApi: a minimal WhpApi for fuzz_whp_exit: scripted exits, a register file, a RIP log.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <map>

#include "virt/whp/whp_api.h"

namespace virt::whp::fuzz {

// Every call succeeds but the optional ones. The host has the hypervisor, LAPIC emulation and
// every extended exit; no triggers, no WHvGetVirtualProcessorCpuidOutput, no doorbells and no
// state calls. RunVirtualProcessor hands out the queued exits, then WHvRunVpExitReasonCanceled.
// Single-threaded (one fuzz input at a time).
class FuzzWhpApi final : public WhpApi {
 public:
  void Queue(const WHV_RUN_VP_EXIT_CONTEXT& exit) { exits_.push_back(exit); }
  // Forgets the registers and the queue, for the next input.
  void Reset() {
    exits_.clear();
    regs_.clear();
    drained_ = false;
  }
  // Whether the last RunVirtualProcessor found the queue empty.
  bool drained() const { return drained_; }

  // The exit the last RunVirtualProcessor returned.
  const WHV_RUN_VP_EXIT_CONTEXT& last_exit() const { return last_; }
  // RIP writes since the last RunVirtualProcessor (so: made while handling last_exit()).
  int rip_writes() const { return rip_writes_; }
  int interrupts() const { return interrupts_; }
  uint64_t reg(WHV_REGISTER_NAME name) const {
    auto it = regs_.find(name);
    return it == regs_.end() ? 0 : it->second;
  }
  void set_reg(WHV_REGISTER_NAME name, uint64_t value) { regs_[name] = value; }

  Status GetCapability(WHV_CAPABILITY_CODE code, void* buffer, uint32_t size,
                       uint32_t* written) override {
    uint64_t value = 0;
    if (code == WHvCapabilityCodeHypervisorPresent) value = 1;
    if (code == WHvCapabilityCodeExtendedVmExits) value = ~uint64_t{0};
    if (code == WHvCapabilityCodeFeatures) {
      WHV_CAPABILITY_FEATURES f{};
      f.LocalApicEmulation = 1;
      value = f.AsUINT64;
    }
    const uint32_t n = size < sizeof value ? size : static_cast<uint32_t>(sizeof value);
    std::memcpy(buffer, &value, n);
    if (written != nullptr) *written = n;
    return Ok();
  }
  Result<WHV_PARTITION_HANDLE> CreatePartition() override {
    return reinterpret_cast<WHV_PARTITION_HANDLE>(uintptr_t{0x1000});
  }
  Status SetPartitionProperty(WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE, const void*,
                              uint32_t) override {
    return Ok();
  }
  Status SetupPartition(WHV_PARTITION_HANDLE) override { return Ok(); }
  Status DeletePartition(WHV_PARTITION_HANDLE) override { return Ok(); }
  Status MapGpaRange(WHV_PARTITION_HANDLE, void*, WHV_GUEST_PHYSICAL_ADDRESS, uint64_t,
                     WHV_MAP_GPA_RANGE_FLAGS) override {
    return Ok();
  }
  Status UnmapGpaRange(WHV_PARTITION_HANDLE, WHV_GUEST_PHYSICAL_ADDRESS, uint64_t) override {
    return Ok();
  }
  Status CreateVirtualProcessor(WHV_PARTITION_HANDLE, uint32_t, uint32_t) override { return Ok(); }
  Status DeleteVirtualProcessor(WHV_PARTITION_HANDLE, uint32_t) override { return Ok(); }
  Status RunVirtualProcessor(WHV_PARTITION_HANDLE, uint32_t, WHV_RUN_VP_EXIT_CONTEXT* exit) override {
    rip_writes_ = 0;
    drained_ = exits_.empty();
    if (drained_) {
      last_ = WHV_RUN_VP_EXIT_CONTEXT{};
      last_.ExitReason = WHvRunVpExitReasonCanceled;
    } else {
      last_ = exits_.front();
      exits_.pop_front();
    }
    std::memcpy(exit, &last_, sizeof last_);
    return Ok();
  }
  Status CancelRunVirtualProcessor(WHV_PARTITION_HANDLE, uint32_t, uint32_t) override { return Ok(); }
  Status GetVirtualProcessorRegisters(WHV_PARTITION_HANDLE, uint32_t, const WHV_REGISTER_NAME* names,
                                      uint32_t count, WHV_REGISTER_VALUE* values) override {
    for (uint32_t i = 0; i < count; ++i) {
      values[i] = WHV_REGISTER_VALUE{};
      values[i].Reg64 = reg(names[i]);
    }
    return Ok();
  }
  Status SetVirtualProcessorRegisters(WHV_PARTITION_HANDLE, uint32_t, const WHV_REGISTER_NAME* names,
                                      uint32_t count, const WHV_REGISTER_VALUE* values) override {
    for (uint32_t i = 0; i < count; ++i) {
      regs_[names[i]] = values[i].Reg64;
      if (names[i] == WHvX64RegisterRip) ++rip_writes_;
    }
    return Ok();
  }
  Status RequestInterrupt(WHV_PARTITION_HANDLE, const WHV_INTERRUPT_CONTROL&) override {
    ++interrupts_;
    return Ok();
  }
  bool HasTriggers() const override { return false; }
  Status CreateTrigger(WHV_PARTITION_HANDLE, const WHV_TRIGGER_PARAMETERS&, WHV_TRIGGER_HANDLE*,
                       HANDLE*) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvCreateTrigger");
  }
  Status UpdateTriggerParameters(WHV_PARTITION_HANDLE, const WHV_TRIGGER_PARAMETERS&,
                                 WHV_TRIGGER_HANDLE) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvUpdateTriggerParameters");
  }
  Status DeleteTrigger(WHV_PARTITION_HANDLE, WHV_TRIGGER_HANDLE) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvDeleteTrigger");
  }
  bool HasCpuidOutput() const override { return false; }
  Status GetVirtualProcessorCpuidOutput(WHV_PARTITION_HANDLE, uint32_t, uint32_t, uint32_t,
                                        WHV_CPUID_OUTPUT*) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvGetVirtualProcessorCpuidOutput");
  }
  // State, time and dirty-log calls (issue 12) and doorbells (issue 11): the exit paths under
  // fuzz make none of them, so this host answers as a WinHvPlatform.dll without them would.
  Status GetPartitionProperty(WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE, void*, uint32_t,
                              uint32_t*) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvGetPartitionProperty");
  }
  Status SuspendPartitionTime(WHV_PARTITION_HANDLE) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvSuspendPartitionTime");
  }
  Status ResumePartitionTime(WHV_PARTITION_HANDLE) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvResumePartitionTime");
  }
  Status GetVirtualProcessorXsaveState(WHV_PARTITION_HANDLE, uint32_t, void*, uint32_t,
                                       uint32_t*) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvGetVirtualProcessorXsaveState");
  }
  Status SetVirtualProcessorXsaveState(WHV_PARTITION_HANDLE, uint32_t, const void*,
                                       uint32_t) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvSetVirtualProcessorXsaveState");
  }
  Status GetVirtualProcessorInterruptControllerState2(WHV_PARTITION_HANDLE, uint32_t, void*,
                                                      uint32_t, uint32_t*) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvGetVirtualProcessorInterruptControllerState2");
  }
  Status SetVirtualProcessorInterruptControllerState2(WHV_PARTITION_HANDLE, uint32_t, const void*,
                                                      uint32_t) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvSetVirtualProcessorInterruptControllerState2");
  }
  Status QueryGpaRangeDirtyBitmap(WHV_PARTITION_HANDLE, WHV_GUEST_PHYSICAL_ADDRESS, uint64_t,
                                  uint64_t*, uint32_t) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvQueryGpaRangeDirtyBitmap");
  }
  bool HasDoorbells() const override { return false; }
  Status RegisterPartitionDoorbellEvent(WHV_PARTITION_HANDLE, const WHV_DOORBELL_MATCH_DATA&,
                                        HANDLE) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvRegisterPartitionDoorbellEvent");
  }
  Status UnregisterPartitionDoorbellEvent(WHV_PARTITION_HANDLE,
                                          const WHV_DOORBELL_MATCH_DATA&) override {
    return Error::Make(ErrorCode::kUnavailable, "WHvUnregisterPartitionDoorbellEvent");
  }
  Status SetEvent(HANDLE) override { return Ok(); }
  Status CloseHandle(HANDLE) override { return Ok(); }

 private:
  std::deque<WHV_RUN_VP_EXIT_CONTEXT> exits_;
  WHV_RUN_VP_EXIT_CONTEXT last_{};
  std::map<uint32_t, uint64_t> regs_;
  int rip_writes_ = 0;
  int interrupts_ = 0;
  bool drained_ = false;
};

}  // namespace virt::whp::fuzz
