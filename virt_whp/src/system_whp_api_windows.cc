// The real WhpApi: WinHvPlatform.dll loaded at run time, one GetProcAddress'd function per call.
#include <windows.h>

#include <string>
#include <utility>

#include "virt/whp/whp_api.h"

namespace virt::whp {
namespace {

using GetCapabilityFn = HRESULT(WINAPI*)(WHV_CAPABILITY_CODE, VOID*, UINT32, UINT32*);
using CreatePartitionFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE*);
using PartitionFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE);
using SetPartitionPropertyFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE,
                                                const VOID*, UINT32);
using MapGpaRangeFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, VOID*, WHV_GUEST_PHYSICAL_ADDRESS,
                                       UINT64, WHV_MAP_GPA_RANGE_FLAGS);
using UnmapGpaRangeFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, WHV_GUEST_PHYSICAL_ADDRESS, UINT64);
using CreateVpFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, UINT32);
using DeleteVpFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32);
using RunVpFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, VOID*, UINT32);
using CancelRunVpFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, UINT32);
using GetRegistersFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, const WHV_REGISTER_NAME*,
                                        UINT32, WHV_REGISTER_VALUE*);
using SetRegistersFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, const WHV_REGISTER_NAME*,
                                        UINT32, const WHV_REGISTER_VALUE*);
using RequestInterruptFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, const WHV_INTERRUPT_CONTROL*,
                                            UINT32);
using CreateTriggerFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, const WHV_TRIGGER_PARAMETERS*,
                                         WHV_TRIGGER_HANDLE*, HANDLE*);
using UpdateTriggerFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, const WHV_TRIGGER_PARAMETERS*,
                                         WHV_TRIGGER_HANDLE);
using DeleteTriggerFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, WHV_TRIGGER_HANDLE);
using GetCpuidOutputFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, UINT32, UINT32,
                                          WHV_CPUID_OUTPUT*);
// Issue 12: state, time and dirty-log functions.
using GetPartitionPropertyFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, WHV_PARTITION_PROPERTY_CODE,
                                                VOID*, UINT32, UINT32*);
using GetVpBufferFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, VOID*, UINT32, UINT32*);
using SetVpBufferFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, UINT32, const VOID*, UINT32);
using QueryDirtyBitmapFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, WHV_GUEST_PHYSICAL_ADDRESS,
                                            UINT64, UINT64*, UINT32);

constexpr const wchar_t* kDll = L"WinHvPlatform.dll";

Error HresultError(const char* op, HRESULT hr, std::string detail = {}) {
  Error error = Error::Make(ErrorCode::kNative, op, std::move(detail));
  error.domain = NativeDomain::kHresult;
  error.native_code = static_cast<int64_t>(static_cast<uint32_t>(hr));
  return error;
}

Status Check(const char* op, HRESULT hr) {
  if (SUCCEEDED(hr)) return Ok();
  return HresultError(op, hr);
}

Error LastError(const char* op) {
  return HresultError(op, HRESULT_FROM_WIN32(::GetLastError()));
}

class SystemWhpApi final : public WhpApi {
 public:
  explicit SystemWhpApi(HMODULE module) : module_(module) {}
  ~SystemWhpApi() override { ::FreeLibrary(module_); }

  // Resolves every function; the name of the first required one missing, or nullptr.
  const char* Resolve() {
    const char* missing = nullptr;
    auto get = [&](auto& fn, const char* name, bool required) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
          reinterpret_cast<void*>(::GetProcAddress(module_, name)));
      if (fn == nullptr && required && missing == nullptr) missing = name;
    };
    get(get_capability_, "WHvGetCapability", true);
    get(create_partition_, "WHvCreatePartition", true);
    get(set_partition_property_, "WHvSetPartitionProperty", true);
    get(setup_partition_, "WHvSetupPartition", true);
    get(delete_partition_, "WHvDeletePartition", true);
    get(map_gpa_range_, "WHvMapGpaRange", true);
    get(unmap_gpa_range_, "WHvUnmapGpaRange", true);
    get(create_vp_, "WHvCreateVirtualProcessor", true);
    get(delete_vp_, "WHvDeleteVirtualProcessor", true);
    get(run_vp_, "WHvRunVirtualProcessor", true);
    get(cancel_run_vp_, "WHvCancelRunVirtualProcessor", true);
    get(get_registers_, "WHvGetVirtualProcessorRegisters", true);
    get(set_registers_, "WHvSetVirtualProcessorRegisters", true);
    get(request_interrupt_, "WHvRequestInterrupt", true);
    get(create_trigger_, "WHvCreateTrigger", false);
    get(update_trigger_, "WHvUpdateTriggerParameters", false);
    get(delete_trigger_, "WHvDeleteTrigger", false);
    get(get_cpuid_output_, "WHvGetVirtualProcessorCpuidOutput", false);
    // Issue 12.
    get(get_partition_property_, "WHvGetPartitionProperty", true);
    get(suspend_time_, "WHvSuspendPartitionTime", false);
    get(resume_time_, "WHvResumePartitionTime", false);
    get(get_xsave_, "WHvGetVirtualProcessorXsaveState", false);
    get(set_xsave_, "WHvSetVirtualProcessorXsaveState", false);
    get(get_lapic_, "WHvGetVirtualProcessorInterruptControllerState2", false);
    get(set_lapic_, "WHvSetVirtualProcessorInterruptControllerState2", false);
    get(query_dirty_, "WHvQueryGpaRangeDirtyBitmap", false);
    return missing;
  }

  Status GetCapability(WHV_CAPABILITY_CODE code, void* buffer, uint32_t size,
                       uint32_t* written) override {
    UINT32 n = 0;
    const HRESULT hr = get_capability_(code, buffer, size, &n);
    if (written != nullptr) *written = n;
    return Check("WHvGetCapability", hr);
  }
  Result<WHV_PARTITION_HANDLE> CreatePartition() override {
    WHV_PARTITION_HANDLE handle = nullptr;
    if (Status s = Check("WHvCreatePartition", create_partition_(&handle)); !s) return s.error();
    return handle;
  }
  Status SetPartitionProperty(WHV_PARTITION_HANDLE partition, WHV_PARTITION_PROPERTY_CODE code,
                              const void* buffer, uint32_t size) override {
    return Check("WHvSetPartitionProperty", set_partition_property_(partition, code, buffer, size));
  }
  Status SetupPartition(WHV_PARTITION_HANDLE partition) override {
    return Check("WHvSetupPartition", setup_partition_(partition));
  }
  Status DeletePartition(WHV_PARTITION_HANDLE partition) override {
    return Check("WHvDeletePartition", delete_partition_(partition));
  }
  Status MapGpaRange(WHV_PARTITION_HANDLE partition, void* source,
                     WHV_GUEST_PHYSICAL_ADDRESS guest_address, uint64_t size,
                     WHV_MAP_GPA_RANGE_FLAGS flags) override {
    return Check("WHvMapGpaRange", map_gpa_range_(partition, source, guest_address, size, flags));
  }
  Status UnmapGpaRange(WHV_PARTITION_HANDLE partition, WHV_GUEST_PHYSICAL_ADDRESS guest_address,
                       uint64_t size) override {
    return Check("WHvUnmapGpaRange", unmap_gpa_range_(partition, guest_address, size));
  }
  Status CreateVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index,
                                uint32_t flags) override {
    return Check("WHvCreateVirtualProcessor", create_vp_(partition, index, flags));
  }
  Status DeleteVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index) override {
    return Check("WHvDeleteVirtualProcessor", delete_vp_(partition, index));
  }
  Status RunVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index,
                             WHV_RUN_VP_EXIT_CONTEXT* exit) override {
    return Check("WHvRunVirtualProcessor", run_vp_(partition, index, exit, sizeof *exit));
  }
  Status CancelRunVirtualProcessor(WHV_PARTITION_HANDLE partition, uint32_t index,
                                   uint32_t flags) override {
    return Check("WHvCancelRunVirtualProcessor", cancel_run_vp_(partition, index, flags));
  }
  Status GetVirtualProcessorRegisters(WHV_PARTITION_HANDLE partition, uint32_t index,
                                      const WHV_REGISTER_NAME* names, uint32_t count,
                                      WHV_REGISTER_VALUE* values) override {
    return Check("WHvGetVirtualProcessorRegisters",
                 get_registers_(partition, index, names, count, values));
  }
  Status SetVirtualProcessorRegisters(WHV_PARTITION_HANDLE partition, uint32_t index,
                                      const WHV_REGISTER_NAME* names, uint32_t count,
                                      const WHV_REGISTER_VALUE* values) override {
    return Check("WHvSetVirtualProcessorRegisters",
                 set_registers_(partition, index, names, count, values));
  }
  Status RequestInterrupt(WHV_PARTITION_HANDLE partition,
                          const WHV_INTERRUPT_CONTROL& control) override {
    return Check("WHvRequestInterrupt", request_interrupt_(partition, &control, sizeof control));
  }
  bool HasTriggers() const override {
    return create_trigger_ != nullptr && update_trigger_ != nullptr && delete_trigger_ != nullptr;
  }
  Status CreateTrigger(WHV_PARTITION_HANDLE partition, const WHV_TRIGGER_PARAMETERS& parameters,
                       WHV_TRIGGER_HANDLE* trigger, HANDLE* event) override {
    if (!HasTriggers()) return NoTriggers("WHvCreateTrigger");
    return Check("WHvCreateTrigger", create_trigger_(partition, &parameters, trigger, event));
  }
  Status UpdateTriggerParameters(WHV_PARTITION_HANDLE partition,
                                 const WHV_TRIGGER_PARAMETERS& parameters,
                                 WHV_TRIGGER_HANDLE trigger) override {
    if (!HasTriggers()) return NoTriggers("WHvUpdateTriggerParameters");
    return Check("WHvUpdateTriggerParameters", update_trigger_(partition, &parameters, trigger));
  }
  Status DeleteTrigger(WHV_PARTITION_HANDLE partition, WHV_TRIGGER_HANDLE trigger) override {
    if (!HasTriggers()) return NoTriggers("WHvDeleteTrigger");
    return Check("WHvDeleteTrigger", delete_trigger_(partition, trigger));
  }
  bool HasCpuidOutput() const override { return get_cpuid_output_ != nullptr; }
  Status GetVirtualProcessorCpuidOutput(WHV_PARTITION_HANDLE partition, uint32_t index,
                                        uint32_t eax, uint32_t ecx,
                                        WHV_CPUID_OUTPUT* output) override {
    if (!HasCpuidOutput()) {
      return Error::Make(ErrorCode::kUnavailable, "WHvGetVirtualProcessorCpuidOutput",
                         "WinHvPlatform.dll has no WHvGetVirtualProcessorCpuidOutput (Windows 10 "
                         "20H2 or later)");
    }
    return Check("WHvGetVirtualProcessorCpuidOutput",
                 get_cpuid_output_(partition, index, eax, ecx, output));
  }
  // Issue 12: state, time and dirty log.
  Status GetPartitionProperty(WHV_PARTITION_HANDLE partition, WHV_PARTITION_PROPERTY_CODE code,
                              void* buffer, uint32_t size, uint32_t* written) override {
    UINT32 n = 0;
    const HRESULT hr = get_partition_property_(partition, code, buffer, size, &n);
    if (written != nullptr) *written = n;
    return Check("WHvGetPartitionProperty", hr);
  }
  Status SuspendPartitionTime(WHV_PARTITION_HANDLE partition) override {
    if (suspend_time_ == nullptr) return Missing("WHvSuspendPartitionTime");
    return Check("WHvSuspendPartitionTime", suspend_time_(partition));
  }
  Status ResumePartitionTime(WHV_PARTITION_HANDLE partition) override {
    if (resume_time_ == nullptr) return Missing("WHvResumePartitionTime");
    return Check("WHvResumePartitionTime", resume_time_(partition));
  }
  Status GetVirtualProcessorXsaveState(WHV_PARTITION_HANDLE partition, uint32_t index,
                                       void* buffer, uint32_t size, uint32_t* written) override {
    if (get_xsave_ == nullptr) return Missing("WHvGetVirtualProcessorXsaveState");
    return GetVpBuffer("WHvGetVirtualProcessorXsaveState", get_xsave_, partition, index, buffer,
                       size, written);
  }
  Status SetVirtualProcessorXsaveState(WHV_PARTITION_HANDLE partition, uint32_t index,
                                       const void* buffer, uint32_t size) override {
    if (set_xsave_ == nullptr) return Missing("WHvSetVirtualProcessorXsaveState");
    return Check("WHvSetVirtualProcessorXsaveState", set_xsave_(partition, index, buffer, size));
  }
  Status GetVirtualProcessorInterruptControllerState2(WHV_PARTITION_HANDLE partition,
                                                      uint32_t index, void* buffer, uint32_t size,
                                                      uint32_t* written) override {
    if (get_lapic_ == nullptr) return Missing("WHvGetVirtualProcessorInterruptControllerState2");
    return GetVpBuffer("WHvGetVirtualProcessorInterruptControllerState2", get_lapic_, partition,
                       index, buffer, size, written);
  }
  Status SetVirtualProcessorInterruptControllerState2(WHV_PARTITION_HANDLE partition,
                                                      uint32_t index, const void* buffer,
                                                      uint32_t size) override {
    if (set_lapic_ == nullptr) return Missing("WHvSetVirtualProcessorInterruptControllerState2");
    return Check("WHvSetVirtualProcessorInterruptControllerState2",
                 set_lapic_(partition, index, buffer, size));
  }
  Status QueryGpaRangeDirtyBitmap(WHV_PARTITION_HANDLE partition,
                                  WHV_GUEST_PHYSICAL_ADDRESS guest_address, uint64_t size,
                                  uint64_t* bitmap, uint32_t bitmap_bytes) override {
    if (query_dirty_ == nullptr) return Missing("WHvQueryGpaRangeDirtyBitmap");
    return Check("WHvQueryGpaRangeDirtyBitmap",
                 query_dirty_(partition, guest_address, size, bitmap, bitmap_bytes));
  }

  Status SetEvent(HANDLE event) override {
    if (!::SetEvent(event)) return LastError("SetEvent");
    return Ok();
  }
  Status CloseHandle(HANDLE handle) override {
    if (!::CloseHandle(handle)) return LastError("CloseHandle");
    return Ok();
  }

 private:
  static Error NoTriggers(const char* op) {
    return Error::Make(ErrorCode::kUnavailable, op,
                       "WinHvPlatform.dll has no interrupt triggers (Windows 10 20H2 or later)");
  }

  // Issue 12.
  static Error Missing(const char* function) {
    return Error::Make(ErrorCode::kUnavailable, function,
                       std::string("WinHvPlatform.dll has no ") + function +
                           " (a newer Windows 10 has it)");
  }
  static Status GetVpBuffer(const char* op, GetVpBufferFn fn, WHV_PARTITION_HANDLE partition,
                            uint32_t index, void* buffer, uint32_t size, uint32_t* written) {
    UINT32 n = 0;
    const HRESULT hr = fn(partition, index, buffer, size, &n);
    if (written != nullptr) *written = n;
    return Check(op, hr);
  }

  HMODULE module_;
  GetCapabilityFn get_capability_ = nullptr;
  CreatePartitionFn create_partition_ = nullptr;
  SetPartitionPropertyFn set_partition_property_ = nullptr;
  PartitionFn setup_partition_ = nullptr;
  PartitionFn delete_partition_ = nullptr;
  MapGpaRangeFn map_gpa_range_ = nullptr;
  UnmapGpaRangeFn unmap_gpa_range_ = nullptr;
  CreateVpFn create_vp_ = nullptr;
  DeleteVpFn delete_vp_ = nullptr;
  RunVpFn run_vp_ = nullptr;
  CancelRunVpFn cancel_run_vp_ = nullptr;
  GetRegistersFn get_registers_ = nullptr;
  SetRegistersFn set_registers_ = nullptr;
  RequestInterruptFn request_interrupt_ = nullptr;
  CreateTriggerFn create_trigger_ = nullptr;
  UpdateTriggerFn update_trigger_ = nullptr;
  DeleteTriggerFn delete_trigger_ = nullptr;
  GetCpuidOutputFn get_cpuid_output_ = nullptr;
  // Issue 12.
  GetPartitionPropertyFn get_partition_property_ = nullptr;
  PartitionFn suspend_time_ = nullptr;
  PartitionFn resume_time_ = nullptr;
  GetVpBufferFn get_xsave_ = nullptr;
  SetVpBufferFn set_xsave_ = nullptr;
  GetVpBufferFn get_lapic_ = nullptr;
  SetVpBufferFn set_lapic_ = nullptr;
  QueryDirtyBitmapFn query_dirty_ = nullptr;

  // Issue 11 (doorbells): both functions are optional (Windows 10 2004 and later), looked up
  // here rather than in Resolve; the initialisers run after module_'s, which is declared above.
 public:
  bool HasDoorbells() const override {
    return register_doorbell_ != nullptr && unregister_doorbell_ != nullptr;
  }
  Status RegisterPartitionDoorbellEvent(WHV_PARTITION_HANDLE partition,
                                        const WHV_DOORBELL_MATCH_DATA& match,
                                        HANDLE event) override {
    if (!HasDoorbells()) return NoDoorbells("WHvRegisterPartitionDoorbellEvent");
    return Check("WHvRegisterPartitionDoorbellEvent", register_doorbell_(partition, &match, event));
  }
  Status UnregisterPartitionDoorbellEvent(WHV_PARTITION_HANDLE partition,
                                          const WHV_DOORBELL_MATCH_DATA& match) override {
    if (!HasDoorbells()) return NoDoorbells("WHvUnregisterPartitionDoorbellEvent");
    return Check("WHvUnregisterPartitionDoorbellEvent", unregister_doorbell_(partition, &match));
  }

 private:
  using RegisterDoorbellFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE, const WHV_DOORBELL_MATCH_DATA*,
                                              HANDLE);
  using UnregisterDoorbellFn = HRESULT(WINAPI*)(WHV_PARTITION_HANDLE,
                                                const WHV_DOORBELL_MATCH_DATA*);
  template <typename Fn>
  Fn Lookup(const char* name) const {
    return reinterpret_cast<Fn>(reinterpret_cast<void*>(::GetProcAddress(module_, name)));
  }
  static Error NoDoorbells(const char* op) {
    return Error::Make(ErrorCode::kUnavailable, op,
                       "WinHvPlatform.dll has no doorbells (Windows 10 2004 or later)");
  }
  const RegisterDoorbellFn register_doorbell_ =
      Lookup<RegisterDoorbellFn>("WHvRegisterPartitionDoorbellEvent");
  const UnregisterDoorbellFn unregister_doorbell_ =
      Lookup<UnregisterDoorbellFn>("WHvUnregisterPartitionDoorbellEvent");
};

}  // namespace

Result<std::shared_ptr<WhpApi>> LoadWhpApi() {
  // System32 only: never pick up a WinHvPlatform.dll planted next to the executable.
  HMODULE module = ::LoadLibraryExW(kDll, nullptr, LOAD_LIBRARY_SEARCH_SYSTEM32);
  if (module == nullptr) {
    Error error = LastError("LoadLibraryExW");
    error.code = ErrorCode::kUnavailable;
    error.detail =
        "WinHvPlatform.dll cannot be loaded: enable the Windows Hypervisor Platform feature "
        "(Windows 10 1803 or later)";
    return error;
  }
  auto api = std::make_shared<SystemWhpApi>(module);  // frees the module on every path
  if (const char* missing = api->Resolve(); missing != nullptr) {
    Error error = LastError("GetProcAddress");
    error.code = ErrorCode::kUnavailable;
    error.detail = std::string("WinHvPlatform.dll has no ") + missing;
    return error;
  }
  return std::shared_ptr<WhpApi>(std::move(api));
}

}  // namespace virt::whp
