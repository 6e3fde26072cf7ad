// The WHP mock suites' shared, compiled-once part: MockWhpApi's constructor and destructor and
// FakeWhp's ON_CALL defaults (instantiating them in every test file cost most of its compile).
#include "mock_whp_api.h"

namespace virt::whp::test {

MockWhpApi::MockWhpApi() = default;
MockWhpApi::~MockWhpApi() = default;

FakeWhp::FakeWhp(std::shared_ptr<testing::NiceMock<MockWhpApi>> api)
    : api_(api ? std::move(api) : std::make_shared<testing::NiceMock<MockWhpApi>>()) {
  Install();
  InstallDoorbells();  // issue 11
}

void FakeWhp::Install() {
  using testing::_;
  using testing::Invoke;
  auto& m = *api_;
  ON_CALL(m, GetCapability(_, _, _, _))
      .WillByDefault(Invoke([this](WHV_CAPABILITY_CODE code, void* buffer, uint32_t size,
                                   uint32_t* written) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("GetCapability", "")) return *e;
        uint64_t value = 0;
        if (code == WHvCapabilityCodeHypervisorPresent) value = hypervisor_present_ ? 1 : 0;
        if (code == WHvCapabilityCodeExtendedVmExits) value = extended_vm_exits_;
        if (code == WHvCapabilityCodeFeatures) {
          WHV_CAPABILITY_FEATURES f{};
          f.LocalApicEmulation = local_apic_emulation_ ? 1 : 0;
          f.DirtyPageTracking = dirty_page_tracking_ ? 1 : 0;  // issue 12
          value = f.AsUINT64;
        }
        const uint32_t n = size < sizeof value ? size : static_cast<uint32_t>(sizeof value);
        std::memcpy(buffer, &value, n);
        if (written != nullptr) *written = n;
        return Ok();
      }));
  ON_CALL(m, CreatePartition()).WillByDefault(Invoke([this]() -> Result<WHV_PARTITION_HANDLE> {
    std::lock_guard lock(mu_);
    if (auto e = Enter("CreatePartition", "")) return *e;
    void* h = NewHandle();
    live_partitions_.insert(h);
    return h;
  }));
  ON_CALL(m, SetPartitionProperty(_, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p, WHV_PARTITION_PROPERTY_CODE code,
                                   const void* buffer, uint32_t size) -> Status {
        std::lock_guard lock(mu_);
        char entry[64];
        std::snprintf(entry, sizeof entry, "SetPartitionProperty(0x%x)",
                      static_cast<unsigned>(code));
        if (auto e = Enter("SetPartitionProperty", entry)) return *e;
        if (!live_partitions_.contains(p)) return HresultError("WHvSetPartitionProperty", kHrInvalidArg);
        const auto* bytes = static_cast<const uint8_t*>(buffer);
        properties_[static_cast<uint32_t>(code)] = std::vector<uint8_t>(bytes, bytes + size);
        return Ok();
      }));
  ON_CALL(m, SetupPartition(_)).WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p) -> Status {
    std::lock_guard lock(mu_);
    if (auto e = Enter("SetupPartition", "")) return *e;
    if (!live_partitions_.contains(p)) return HresultError("WHvSetupPartition", kHrInvalidArg);
    return Ok();
  }));
  ON_CALL(m, DeletePartition(_)).WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p) -> Status {
    std::lock_guard lock(mu_);
    if (auto e = Enter("DeletePartition", "")) return *e;
    if (live_partitions_.erase(p) == 0) return HresultError("WHvDeletePartition", kHrInvalidArg);
    // The partition takes its vCPUs and triggers with it; trigger events stay open.
    live_vps_.clear();
    std::erase_if(triggers_, [p](const auto& t) { return t.second.partition == p; });
    return Ok();
  }));
  ON_CALL(m, MapGpaRange(_, _, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, void* source, uint64_t gpa,
                                   uint64_t size, WHV_MAP_GPA_RANGE_FLAGS flags) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("MapGpaRange", "")) return *e;
        mappings_[gpa] = Mapping{source, gpa, size, static_cast<uint32_t>(flags)};
        return Ok();
      }));
  ON_CALL(m, UnmapGpaRange(_, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint64_t gpa, uint64_t size) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("UnmapGpaRange", "")) return *e;
        auto it = mappings_.find(gpa);
        if (it == mappings_.end() || it->second.size != size) {
          return HresultError("WHvUnmapGpaRange", kHrInvalidArg);
        }
        mappings_.erase(it);
        return Ok();
      }));
  ON_CALL(m, CreateVirtualProcessor(_, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index, uint32_t) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("CreateVirtualProcessor", "")) return *e;
        if (!live_vps_.insert(index).second) {
          return HresultError("WHvCreateVirtualProcessor", kHrInvalidArg);
        }
        // A new VP starts from reset; under LAPIC emulation WHP parks an AP in StartupSuspend.
        vps_[index].registers.clear();
        if (index != 0 && LapicEmulated()) Activity(index) = 1;
        vps_[index].xsave.assign(kFakeXsaveSize, 0);
        vps_[index].lapic.assign(kFakeLapicSize, 0);
        for (uint32_t i = 0; i < kFakeXsaveSize; ++i) {
          vps_[index].xsave[i] = static_cast<uint8_t>(i * 7 + index);
        }
        for (uint32_t i = 0; i < kFakeLapicSize; ++i) {
          vps_[index].lapic[i] = static_cast<uint8_t>(i * 3 + index);
        }
        return Ok();
      }));
  ON_CALL(m, DeleteVirtualProcessor(_, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("DeleteVirtualProcessor", "")) return *e;
        if (live_vps_.erase(index) == 0) {
          return HresultError("WHvDeleteVirtualProcessor", kHrInvalidArg);
        }
        return Ok();
      }));
  ON_CALL(m, RunVirtualProcessor(_, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index,
                                   WHV_RUN_VP_EXIT_CONTEXT* exit) -> Status {
        std::unique_lock lock(mu_);
        if (auto e = Enter("RunVirtualProcessor", "")) return *e;
        std::memset(exit, 0, sizeof *exit);
        if ((Activity(index) & 1) != 0) {
          // An AP waiting for SIPI stays inside the run call until started (or cancelled).
          ++suspended_;
          changed_.notify_all();
          changed_.wait(lock, [&] {
            return (Activity(index) & 1) == 0 || vps_[index].cancel_pending;
          });
          --suspended_;
        }
        if (run_blocks_) {
          ++running_;
          changed_.notify_all();
          changed_.wait(lock, [&] { return vps_[index].cancel_pending; });
          --running_;
        }
        Vp& vp = vps_[index];
        if (vp.cancel_pending) {
          vp.cancel_pending = false;
          exit->ExitReason = WHvRunVpExitReasonCanceled;
          return Ok();
        }
        if (vp.exits.empty()) {
          exit->ExitReason = WHvRunVpExitReasonX64Halt;  // nothing scripted: a HLT
          return Ok();
        }
        *exit = vp.exits.front();
        vp.exits.pop_front();
        return Ok();
      }));
  ON_CALL(m, CancelRunVirtualProcessor(_, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index, uint32_t) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("CancelRunVirtualProcessor", "")) return *e;
        vps_[index].cancel_pending = true;
        changed_.notify_all();
        return Ok();
      }));
  ON_CALL(m, GetVirtualProcessorRegisters(_, _, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index,
                                   const WHV_REGISTER_NAME* names, uint32_t count,
                                   WHV_REGISTER_VALUE* values) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("GetVirtualProcessorRegisters", "")) return *e;
        for (uint32_t i = 0; i < count; ++i) values[i] = vps_[index].registers[names[i]];
        return Ok();
      }));
  ON_CALL(m, SetVirtualProcessorRegisters(_, _, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index,
                                   const WHV_REGISTER_NAME* names, uint32_t count,
                                   const WHV_REGISTER_VALUE* values) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("SetVirtualProcessorRegisters", "")) return *e;
        for (uint32_t i = 0; i < count; ++i) vps_[index].registers[names[i]] = values[i];
        return Ok();
      }));
  ON_CALL(m, RequestInterrupt(_, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE,
                                   const WHV_INTERRUPT_CONTROL& control) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("RequestInterrupt", "")) return *e;
        requested_.push_back(control);
        ApplyInitSipi(control);
        changed_.notify_all();
        return Ok();
      }));
  ON_CALL(m, HasTriggers()).WillByDefault(Invoke([this] {
    std::lock_guard lock(mu_);
    return has_triggers_;
  }));
  ON_CALL(m, CreateTrigger(_, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p, const WHV_TRIGGER_PARAMETERS& params,
                                   WHV_TRIGGER_HANDLE* trigger, HANDLE* event) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("CreateTrigger", "")) return *e;
        if (!live_partitions_.contains(p)) return HresultError("WHvCreateTrigger", kHrInvalidArg);
        void* t = NewHandle();
        void* ev = NewHandle();
        triggers_[t] = Trigger{p, params, ev};
        open_handles_.insert(ev);
        *trigger = t;
        *event = ev;
        return Ok();
      }));
  ON_CALL(m, UpdateTriggerParameters(_, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, const WHV_TRIGGER_PARAMETERS& params,
                                   WHV_TRIGGER_HANDLE t) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("UpdateTriggerParameters", "")) return *e;
        auto it = triggers_.find(t);
        if (it == triggers_.end()) return HresultError("WHvUpdateTriggerParameters", kHrInvalidArg);
        it->second.parameters = params;
        return Ok();
      }));
  ON_CALL(m, DeleteTrigger(_, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, WHV_TRIGGER_HANDLE t) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("DeleteTrigger", "")) return *e;
        if (triggers_.erase(t) == 0) return HresultError("WHvDeleteTrigger", kHrInvalidArg);
        return Ok();
      }));
  ON_CALL(m, HasCpuidOutput()).WillByDefault(Invoke([this] {
    std::lock_guard lock(mu_);
    return has_cpuid_output_;
  }));
  ON_CALL(m, GetVirtualProcessorCpuidOutput(_, _, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint32_t index, uint32_t eax,
                                   uint32_t ecx, WHV_CPUID_OUTPUT* out) -> Status {
        std::lock_guard lock(mu_);
        char entry[80];
        std::snprintf(entry, sizeof entry, "GetVirtualProcessorCpuidOutput(%u, 0x%x.%u)", index,
                      eax, ecx);
        if (auto e = Enter("GetVirtualProcessorCpuidOutput", entry)) return *e;
        if (!live_vps_.contains(index)) {
          return HresultError("WHvGetVirtualProcessorCpuidOutput", kHrInvalidArg);
        }
        *out = ReadCpuid(index, eax, ecx);
        return Ok();
      }));
  InstallStateCalls();
  ON_CALL(m, SetEvent(_)).WillByDefault(Invoke([this](HANDLE event) -> Status {
    std::lock_guard lock(mu_);
    if (auto e = Enter("SetEvent", "")) return *e;
    if (!open_handles_.contains(event)) return HresultError("SetEvent", kHrInvalidArg);
    for (const auto& [handle, trigger] : triggers_) {
      if (trigger.event != event) continue;
      delivered_.push_back(trigger.parameters.Interrupt);
      if (delivery_hook_) delivery_hook_(trigger.parameters.Interrupt);
    }
    return Ok();
  }));
  ON_CALL(m, CloseHandle(_)).WillByDefault(Invoke([this](HANDLE handle) -> Status {
    std::lock_guard lock(mu_);
    if (auto e = Enter("CloseHandle", "")) return *e;
    if (open_handles_.erase(handle) == 0) return HresultError("CloseHandle", kHrInvalidArg);
    return Ok();
  }));
}

// Issue 12: defaults for the state, time and dirty-log calls.
void FakeWhp::InstallStateCalls() {
  using testing::_;
  using testing::Invoke;
  auto& m = *api_;
  ON_CALL(m, GetPartitionProperty(_, _, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p, WHV_PARTITION_PROPERTY_CODE code,
                                   void* buffer, uint32_t size, uint32_t* written) -> Status {
        std::lock_guard lock(mu_);
        char entry[64];
        std::snprintf(entry, sizeof entry, "GetPartitionProperty(0x%x)",
                      static_cast<unsigned>(code));
        if (auto e = Enter("GetPartitionProperty", entry)) return *e;
        if (!live_partitions_.contains(p) || code != WHvPartitionPropertyCodeReferenceTime ||
            size < sizeof reference_time_) {
          return HresultError("WHvGetPartitionProperty", kHrInvalidArg);
        }
        std::memcpy(buffer, &reference_time_, sizeof reference_time_);
        if (written != nullptr) *written = sizeof reference_time_;
        return Ok();
      }));
  ON_CALL(m, SuspendPartitionTime(_)).WillByDefault(Invoke([this](WHV_PARTITION_HANDLE) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("SuspendPartitionTime", "")) return Status(*e);
    time_suspended_ = true;
    return Ok();
  }));
  ON_CALL(m, ResumePartitionTime(_)).WillByDefault(Invoke([this](WHV_PARTITION_HANDLE) {
    std::lock_guard lock(mu_);
    if (auto e = Enter("ResumePartitionTime", "")) return Status(*e);
    time_suspended_ = false;
    return Ok();
  }));
  auto get_buffer = [this](const char* method, std::vector<uint8_t> Vp::*field) {
    return [this, method, field](WHV_PARTITION_HANDLE, uint32_t index, void* buffer,
                                 uint32_t size, uint32_t* written) -> Status {
      std::lock_guard lock(mu_);
      if (auto e = Enter(method, "")) return *e;
      const std::vector<uint8_t>& bytes = vps_[index].*field;
      if (!live_vps_.contains(index) || size < bytes.size()) {
        return HresultError(OpName(method), kHrInvalidArg);
      }
      std::memcpy(buffer, bytes.data(), bytes.size());
      if (written != nullptr) *written = static_cast<uint32_t>(bytes.size());
      return Ok();
    };
  };
  auto set_buffer = [this](const char* method, std::vector<uint8_t> Vp::*field) {
    return [this, method, field](WHV_PARTITION_HANDLE, uint32_t index, const void* buffer,
                                 uint32_t size) -> Status {
      std::lock_guard lock(mu_);
      if (auto e = Enter(method, "")) return *e;
      if (!live_vps_.contains(index)) return HresultError(OpName(method), kHrInvalidArg);
      const auto* bytes = static_cast<const uint8_t*>(buffer);
      vps_[index].*field = std::vector<uint8_t>(bytes, bytes + size);
      return Ok();
    };
  };
  ON_CALL(m, GetVirtualProcessorXsaveState(_, _, _, _, _))
      .WillByDefault(Invoke(get_buffer("GetVirtualProcessorXsaveState", &Vp::xsave)));
  ON_CALL(m, SetVirtualProcessorXsaveState(_, _, _, _))
      .WillByDefault(Invoke(set_buffer("SetVirtualProcessorXsaveState", &Vp::xsave)));
  ON_CALL(m, GetVirtualProcessorInterruptControllerState2(_, _, _, _, _))
      .WillByDefault(Invoke(
          get_buffer("GetVirtualProcessorInterruptControllerState2", &Vp::lapic)));
  ON_CALL(m, SetVirtualProcessorInterruptControllerState2(_, _, _, _))
      .WillByDefault(Invoke(
          set_buffer("SetVirtualProcessorInterruptControllerState2", &Vp::lapic)));
  ON_CALL(m, QueryGpaRangeDirtyBitmap(_, _, _, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE, uint64_t gpa, uint64_t size,
                                   uint64_t* bitmap, uint32_t bytes) -> Status {
        std::lock_guard lock(mu_);
        if (auto e = Enter("QueryGpaRangeDirtyBitmap", "")) return *e;
        const uint64_t pages = size / 4096;
        auto it = mappings_.upper_bound(gpa);
        const bool tracked =
            it != mappings_.begin() && (--it, it->second.guest_address + it->second.size >=
                                                  gpa + size) &&
            (it->second.flags & WHvMapGpaRangeFlagTrackDirtyPages) != 0;
        if (gpa % 4096 != 0 || size % 4096 != 0 || !tracked || bytes < (pages + 63) / 64 * 8) {
          return HresultError("WHvQueryGpaRangeDirtyBitmap", kHrInvalidArg);
        }
        std::memset(bitmap, 0, bytes);
        for (uint64_t i = 0; i < pages; ++i) {
          if (dirty_pages_.erase(gpa / 4096 + i) != 0) bitmap[i / 64] |= uint64_t{1} << (i % 64);
        }
        return Ok();
      }));
}

void FakeWhp::InstallDoorbells() {
  using testing::_;
  using testing::Invoke;
  auto& m = *api_;
  ON_CALL(m, HasDoorbells()).WillByDefault(Invoke([this] {
    std::lock_guard lock(mu_);
    return has_doorbells_;
  }));
  ON_CALL(m, RegisterPartitionDoorbellEvent(_, _, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p,
                                   const WHV_DOORBELL_MATCH_DATA& match,
                                   HANDLE event) -> Status {
        std::lock_guard lock(mu_);
        constexpr const char* kOp = "WHvRegisterPartitionDoorbellEvent";
        doorbell_calls_.push_back({true, p, match, event});
        if (!has_doorbells_) return Error::Make(ErrorCode::kUnavailable, kOp, "no doorbells");
        if (auto e = Enter("RegisterPartitionDoorbellEvent", "")) return *e;
        if (!live_partitions_.contains(p) || Malformed(match)) {
          return HresultError(kOp, kHrInvalidArg);
        }
        for (const Doorbell& d : doorbells_) {
          if (d.partition == p && Conflicts(d.match, match)) {
            return HresultError(kOp, kHrHvInvalidParameter);
          }
        }
        doorbells_.push_back({p, match, event});
        return Ok();
      }));
  ON_CALL(m, UnregisterPartitionDoorbellEvent(_, _))
      .WillByDefault(Invoke([this](WHV_PARTITION_HANDLE p,
                                   const WHV_DOORBELL_MATCH_DATA& match) -> Status {
        std::lock_guard lock(mu_);
        constexpr const char* kOp = "WHvUnregisterPartitionDoorbellEvent";
        doorbell_calls_.push_back({false, p, match, nullptr});
        if (!has_doorbells_) return Error::Make(ErrorCode::kUnavailable, kOp, "no doorbells");
        if (auto e = Enter("UnregisterPartitionDoorbellEvent", "")) return *e;
        // A deleted partition's doorbells went with it.
        std::erase_if(doorbells_, [this](const Doorbell& d) {
          return !live_partitions_.contains(d.partition);
        });
        const size_t erased = std::erase_if(doorbells_, [&](const Doorbell& d) {
          return d.partition == p && SameMatch(d.match, match);
        });
        if (erased == 0) return HresultError(kOp, kHrInvalidArg);
        return Ok();
      }));
}

}  // namespace virt::whp::test
