// WhpApi: one thin virtual method per WHv (and Win32 handle) call the WHP backend makes.
#pragma once

#include <cstdint>
#include <memory>

#include "virt/result.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

// The seam between the WHP backend and WinHvPlatform.dll. Each method makes exactly the call it
// is named after, with the caller's arguments, and returns Ok or {operation "WHvXxx", HRESULT}
// (NativeDomain::kHresult); no policy, no retries. The backend receives it in its constructor;
// tests pass a GoogleMock. Implementations must be thread-safe (the real one is stateless once
// loaded). Nothing throws.
class WhpApi {
 public:
  virtual ~WhpApi() = default;

  // WHvGetCapability(code, buffer, size, &written).
  virtual Status GetCapability(WHV_CAPABILITY_CODE code, void* buffer, uint32_t size,
                               uint32_t* written) = 0;
  // WHvCreatePartition -> the handle (not usable until SetupPartition).
  virtual Result<WHV_PARTITION_HANDLE> CreatePartition() = 0;
  // WHvSetPartitionProperty(partition, code, buffer, size).
  virtual Status SetPartitionProperty(WHV_PARTITION_HANDLE partition,
                                      WHV_PARTITION_PROPERTY_CODE code, const void* buffer,
                                      uint32_t size) = 0;
  // WHvSetupPartition.
  virtual Status SetupPartition(WHV_PARTITION_HANDLE partition) = 0;
  // WHvDeletePartition: also deletes its vCPUs and triggers (not the trigger event handles).
  virtual Status DeletePartition(WHV_PARTITION_HANDLE partition) = 0;
  // WHvMapGpaRange(partition, source, guest_address, size, flags).
  virtual Status MapGpaRange(WHV_PARTITION_HANDLE partition, void* source,
                             WHV_GUEST_PHYSICAL_ADDRESS guest_address, uint64_t size,
                             WHV_MAP_GPA_RANGE_FLAGS flags) = 0;
  // WHvUnmapGpaRange(partition, guest_address, size).
  virtual Status UnmapGpaRange(WHV_PARTITION_HANDLE partition,
                               WHV_GUEST_PHYSICAL_ADDRESS guest_address, uint64_t size) = 0;
  // WHvCreateVirtualProcessor(partition, index, flags).
  virtual Status CreateVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index,
                                        uint32_t flags) = 0;
  // WHvDeleteVirtualProcessor(partition, index).
  virtual Status DeleteVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index) = 0;
  // WHvRunVirtualProcessor(partition, index, exit, sizeof *exit): blocks until the next exit.
  virtual Status RunVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index,
                                     WHV_RUN_VP_EXIT_CONTEXT* exit) = 0;
  // WHvCancelRunVirtualProcessor(partition, index, flags). Sticky: a cancel while the vCPU is
  // not running makes its next run return WHvRunVpExitReasonCanceled.
  virtual Status CancelRunVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index,
                                           uint32_t flags) = 0;
  // WHvGetVirtualProcessorRegisters(partition, index, names, count, values); values 16-aligned.
  virtual Status GetVirtualProcessorRegisters(WHV_PARTITION_HANDLE partition, uint32_t index,
                                              const WHV_REGISTER_NAME* names, uint32_t count,
                                              WHV_REGISTER_VALUE* values) = 0;
  // WHvSetVirtualProcessorRegisters(partition, index, names, count, values).
  virtual Status SetVirtualProcessorRegisters(WHV_PARTITION_HANDLE partition, uint32_t index,
                                              const WHV_REGISTER_NAME* names, uint32_t count,
                                              const WHV_REGISTER_VALUE* values) = 0;
  // WHvRequestInterrupt(partition, &control, sizeof control). Needs LAPIC emulation.
  virtual Status RequestInterrupt(WHV_PARTITION_HANDLE partition,
                                  const WHV_INTERRUPT_CONTROL& control) = 0;

  // Whether WHvCreateTrigger, WHvUpdateTriggerParameters and WHvDeleteTrigger exist (Windows 10
  // 20H2 and later). When false the three trigger methods fail with kUnavailable.
  virtual bool HasTriggers() const = 0;
  // WHvCreateTrigger(partition, &parameters, &trigger, &event): WHP creates the event.
  virtual Status CreateTrigger(WHV_PARTITION_HANDLE partition,
                               const WHV_TRIGGER_PARAMETERS& parameters,
                               WHV_TRIGGER_HANDLE* trigger, HANDLE* event) = 0;
  // WHvUpdateTriggerParameters(partition, &parameters, trigger).
  virtual Status UpdateTriggerParameters(WHV_PARTITION_HANDLE partition,
                                         const WHV_TRIGGER_PARAMETERS& parameters,
                                         WHV_TRIGGER_HANDLE trigger) = 0;
  // WHvDeleteTrigger(partition, trigger). The event handle stays open: close it after.
  virtual Status DeleteTrigger(WHV_PARTITION_HANDLE partition, WHV_TRIGGER_HANDLE trigger) = 0;

  // Whether WHvGetVirtualProcessorCpuidOutput exists (Windows 10 20H2 and later). When false
  // GetVirtualProcessorCpuidOutput fails with kUnavailable.
  virtual bool HasCpuidOutput() const = 0;
  // WHvGetVirtualProcessorCpuidOutput(partition, index, eax, ecx, output): the CPUID result VP
  // `index` would read for leaf `eax`, sub-leaf `ecx`, with the partition's result-list overrides.
  virtual Status GetVirtualProcessorCpuidOutput(WHV_PARTITION_HANDLE partition, uint32_t index,
                                                uint32_t eax, uint32_t ecx,
                                                WHV_CPUID_OUTPUT* output) = 0;

  // --- Issue 12: vCPU state, partition time, dirty-page log. The functions after
  // GetPartitionProperty are newer than WHP itself (Windows 10 1809 / 1903): where
  // WinHvPlatform.dll lacks one, its method fails with kUnavailable naming it.
  // WHvGetPartitionProperty(partition, code, buffer, size, &written).
  virtual Status GetPartitionProperty(WHV_PARTITION_HANDLE partition,
                                      WHV_PARTITION_PROPERTY_CODE code, void* buffer,
                                      uint32_t size, uint32_t* written) = 0;
  // WHvSuspendPartitionTime(partition): the reference time and every VP's TSC stop.
  virtual Status SuspendPartitionTime(WHV_PARTITION_HANDLE partition) = 0;
  // WHvResumePartitionTime(partition): they run on from where they stopped.
  virtual Status ResumePartitionTime(WHV_PARTITION_HANDLE partition) = 0;
  // WHvGetVirtualProcessorXsaveState(partition, index, buffer, size, &written): the VP's XSAVE
  // area in the hypervisor's (compacted) format.
  virtual Status GetVirtualProcessorXsaveState(WHV_PARTITION_HANDLE partition, uint32_t index,
                                               void* buffer, uint32_t size,
                                               uint32_t* written) = 0;
  // WHvSetVirtualProcessorXsaveState(partition, index, buffer, size).
  virtual Status SetVirtualProcessorXsaveState(WHV_PARTITION_HANDLE partition, uint32_t index,
                                               const void* buffer, uint32_t size) = 0;
  // WHvGetVirtualProcessorInterruptControllerState2(partition, index, buffer, size, &written):
  // the emulated local APIC's register page (needs LAPIC emulation).
  virtual Status GetVirtualProcessorInterruptControllerState2(WHV_PARTITION_HANDLE partition,
                                                              uint32_t index, void* buffer,
                                                              uint32_t size,
                                                              uint32_t* written) = 0;
  // WHvSetVirtualProcessorInterruptControllerState2(partition, index, buffer, size).
  virtual Status SetVirtualProcessorInterruptControllerState2(WHV_PARTITION_HANDLE partition,
                                                              uint32_t index, const void* buffer,
                                                              uint32_t size) = 0;
  // WHvQueryGpaRangeDirtyBitmap(partition, guest_address, size, bitmap, bitmap_bytes): bit i is
  // page guest_address + i * 4 KiB of a range mapped with WHvMapGpaRangeFlagTrackDirtyPages;
  // WHP clears the bits it returns.
  virtual Status QueryGpaRangeDirtyBitmap(WHV_PARTITION_HANDLE partition,
                                          WHV_GUEST_PHYSICAL_ADDRESS guest_address,
                                          uint64_t size, uint64_t* bitmap,
                                          uint32_t bitmap_bytes) = 0;
  // --- end of issue 12.
  // Issue 11 (doorbells). Whether WHvRegisterPartitionDoorbellEvent and
  // WHvUnregisterPartitionDoorbellEvent exist (Windows 10 2004 and later; LoadWhpApi treats
  // both as optional). When false the two doorbell methods fail with kUnavailable.
  virtual bool HasDoorbells() const = 0;
  // WHvRegisterPartitionDoorbellEvent(partition, &match, event): a guest write matching `match`
  // sets `event` (as SetEvent would) instead of exiting.
  virtual Status RegisterPartitionDoorbellEvent(WHV_PARTITION_HANDLE partition,
                                                const WHV_DOORBELL_MATCH_DATA& match,
                                                HANDLE event) = 0;
  // WHvUnregisterPartitionDoorbellEvent(partition, &match): `match` exactly as registered.
  virtual Status UnregisterPartitionDoorbellEvent(WHV_PARTITION_HANDLE partition,
                                                  const WHV_DOORBELL_MATCH_DATA& match) = 0;

  // Win32 SetEvent(event) (operation "SetEvent", HRESULT_FROM_WIN32(GetLastError())).
  virtual Status SetEvent(HANDLE event) = 0;
  // Win32 CloseHandle(handle).
  virtual Status CloseHandle(HANDLE handle) = 0;
};

// The real WhpApi: LoadLibraryExW("WinHvPlatform.dll", LOAD_LIBRARY_SEARCH_SYSTEM32) and
// GetProcAddress of every function above (the three trigger functions and
// WHvGetVirtualProcessorCpuidOutput are optional, see HasTriggers and HasCpuidOutput). Fails
// with kUnavailable, the HRESULT of the failed load/lookup (kHrModuleNotFound when the DLL is
// absent: feature off, Windows before 1803, Wine; kHrProcNotFound when a function is), and a
// detail naming the DLL or the missing function; never crashes when either is absent. The DLL
// stays loaded while the returned object (or any partition made through it) lives. Windows only.
Result<std::shared_ptr<WhpApi>> LoadWhpApi();

}  // namespace virt::whp
