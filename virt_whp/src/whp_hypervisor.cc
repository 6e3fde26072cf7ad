// WhpHypervisor: capability probe, partition creation and the registry entry.
#include "virt/whp/whp_hypervisor.h"

#include <utility>

#include "whp_partition.h"

namespace virt::whp {
namespace {

constexpr const char* kCreateOp = "WhpHypervisor::Create";

Result<uint64_t> GetCapability64(WhpApi& api, WHV_CAPABILITY_CODE code) {
  uint64_t value = 0;
  uint32_t written = 0;
  if (Status s = api.GetCapability(code, &value, sizeof value, &written); !s) return s.error();
  return value;
}

}  // namespace

Result<std::unique_ptr<WhpHypervisor>> WhpHypervisor::Create(std::shared_ptr<WhpApi> api,
                                                             WhpOptions options) {
  if (!api) return Error::Make(ErrorCode::kInvalidArgument, kCreateOp, "no WhpApi");
  auto present = GetCapability64(*api, WHvCapabilityCodeHypervisorPresent);
  if (!present) return present.error();
  if ((*present & 0xFFFFFFFF) == 0) {  // a WINBOOL
    return Error::Make(ErrorCode::kUnavailable, kCreateOp,
                       "the hypervisor is not running (WHvCapabilityCodeHypervisorPresent is "
                       "FALSE: enable Hyper-V / the Windows Hypervisor Platform)");
  }
  auto features = GetCapability64(*api, WHvCapabilityCodeFeatures);
  if (!features) return features.error();
  WHV_CAPABILITY_FEATURES f{};
  f.AsUINT64 = *features;
  WhpHostCaps caps;
  caps.local_apic_emulation = f.LocalApicEmulation != 0;
  caps.dirty_page_tracking = f.DirtyPageTracking != 0;  // issue 12
  // Older hosts do not know this capability; leaf 0x15 is then left out unless options set it.
  auto clock = GetCapability64(*api, WHvCapabilityCodeProcessorClockFrequency);
  caps.processor_clock_hz = clock ? *clock : 0;
  caps.triggers = api->HasTriggers();
  caps.cpuid_output = api->HasCpuidOutput();
  // Hosts older than the capability report nothing; SMP with irqchip is then refused.
  if (auto exits = GetCapability64(*api, WHvCapabilityCodeExtendedVmExits)) {
    WHV_EXTENDED_VM_EXITS e{};
    e.AsUINT64 = *exits;
    caps.init_sipi_trap = e.X64ApicInitSipiExitTrap != 0;
  }
  return std::unique_ptr<WhpHypervisor>(new WhpHypervisor(std::move(api), caps, options));
}

Availability WhpHypervisor::Probe(
    const std::function<Result<std::shared_ptr<WhpApi>>()>& load) {
  auto api = load();
  if (!api) {
    const Error& e = api.error();
    if (e.domain == NativeDomain::kHresult && static_cast<int32_t>(e.native_code) ==
                                                  kHrModuleNotFound) {
      return {Unavailability::kDeviceMissing, e.Message()};
    }
    if (e.domain == NativeDomain::kHresult &&
        static_cast<int32_t>(e.native_code) == kHrProcNotFound) {
      return {Unavailability::kApiVersion, e.Message()};
    }
    return {Unavailability::kOther, e.Message()};
  }
  auto opened = Create(std::move(*api));
  if (opened) return {};
  if (opened.error().code == ErrorCode::kUnavailable) {
    return {Unavailability::kDeviceMissing, opened.error().Message()};
  }
  return {Unavailability::kOther, opened.error().Message()};
}

WhpHypervisor::WhpHypervisor(std::shared_ptr<WhpApi> api, WhpHostCaps caps, WhpOptions options)
    : api_(std::move(api)), caps_(caps), options_(options) {}

Result<std::unique_ptr<Partition>> WhpHypervisor::CreatePartition(const PartitionConfig& config) {
  return WhpPartition::Create(api_, caps_, options_, config);
}

BackendInfo WhpBackendInfo(std::function<Result<std::shared_ptr<WhpApi>>()> load) {
  return BackendInfo{
      "whp",
      [load] { return WhpHypervisor::Probe(load); },
      [load]() -> Result<std::unique_ptr<Hypervisor>> {
        auto api = load();
        if (!api) return api.error();
        auto h = WhpHypervisor::Create(std::move(*api));
        if (!h) return h.error();
        return std::unique_ptr<Hypervisor>(std::move(*h));
      },
  };
}

#ifdef _WIN32
BackendInfo WhpBackendInfo() { return WhpBackendInfo(&LoadWhpApi); }
#endif

}  // namespace virt::whp
