// WhpHypervisor: the WHP backend's entry point (WinHvPlatform.dll), probe and registry entry.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "virt/hypervisor.h"
#include "virt/registry.h"
#include "virt/whp/whp_api.h"

namespace virt::whp {

// What the host's WHP offers, read once when the hypervisor is opened.
struct WhpHostCaps {
  bool local_apic_emulation = false;  // WHvCapabilityCodeFeatures.LocalApicEmulation
  uint64_t processor_clock_hz = 0;    // WHvCapabilityCodeProcessorClockFrequency (0: unknown)
  bool triggers = false;              // WhpApi::HasTriggers (Windows 10 20H2+)
  // WHvCapabilityCodeExtendedVmExits.X64ApicInitSipiExitTrap (0 when the capability is unknown).
  bool init_sipi_trap = false;
  bool cpuid_output = false;          // WhpApi::HasCpuidOutput (Windows 10 20H2+)
  bool dirty_page_tracking = false;   // WHvCapabilityCodeFeatures.DirtyPageTracking (issue 12)
};

// Tunables of every partition this hypervisor creates.
struct WhpOptions {
  // The guest TSC frequency advertised in CPUID leaf 0x15; 0 means the host's processor clock.
  uint64_t tsc_hz = 0;
  // Use interrupt triggers for IrqFd routes when the host has them; false forces the user-mode
  // dispatcher (UserModeIrqFd over WHvRequestInterrupt).
  bool use_triggers = true;
};

class WhpHypervisor final : public Hypervisor {
 public:
  // WHvGetCapability(HypervisorPresent) must be TRUE (else kUnavailable), then Features,
  // ProcessorClockFrequency and ExtendedVmExits (both optional: a failure leaves them 0).
  static Result<std::unique_ptr<WhpHypervisor>> Create(std::shared_ptr<WhpApi> api,
                                                       WhpOptions options = {});

  // Loads the API with `load` and opens it, reporting why WHP is unusable: kDeviceMissing when
  // WinHvPlatform.dll is absent or the hypervisor is not running, kApiVersion when the DLL
  // lacks a function, kOther otherwise.
  static Availability Probe(const std::function<Result<std::shared_ptr<WhpApi>>()>& load);

  std::string_view name() const override { return "whp"; }

  // WHvCreatePartition, WHvSetPartitionProperty (ProcessorCount, LocalApicEmulationMode XApic
  // with config.irqchip else None, ExtendedVmExits {X64CpuidExit, and X64ApicInitSipiExitTrap
  // with irqchip when the host has it}, CpuidExitList {0x15}, CpuidResultList {leaf 0x15}),
  // WHvSetupPartition; then, when the host has WHvGetVirtualProcessorCpuidOutput, the CPUID a VP
  // presents is read through a temporary VP 0 (WHvCreateVirtualProcessor(0),
  // WHvGetVirtualProcessorCpuidOutput per leaf and sub-leaf, WHvDeleteVirtualProcessor(0)).
  // Before any call: kInvalidArgument for vcpu_count 0 and for pit without irqchip;
  // kUnavailable for pit (WHP has no PIT), for irqchip without LAPIC emulation, and for irqchip
  // with vcpu_count > 1 without the INIT/SIPI trap. The partition is deleted again on any
  // failure.
  Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig& config) override;

  const WhpHostCaps& caps() const { return caps_; }

 private:
  WhpHypervisor(std::shared_ptr<WhpApi> api, WhpHostCaps caps, WhpOptions options);

  std::shared_ptr<WhpApi> api_;
  WhpHostCaps caps_;
  WhpOptions options_;
};

// The registry entry for WHP using `load` to obtain the API (LoadWhpApi on Windows).
BackendInfo WhpBackendInfo(std::function<Result<std::shared_ptr<WhpApi>>()> load);

#ifdef _WIN32
// The registry entry over the real WinHvPlatform.dll.
BackendInfo WhpBackendInfo();
#endif

}  // namespace virt::whp
