// The WHP types the backend is written against: the mingw-w64 SDK's on Windows, our own
// (whp_defs.h) elsewhere, checked against each other where both exist.
//
// Backend code lives in namespace virt::whp and names the WHP types and enumerators unqualified
// (WHV_INTERRUPT_CONTROL, WHvRunVpExitReasonX64Halt ...). On Windows those resolve to the
// global SDK declarations; elsewhere the using-directive below makes them resolve to
// virt::whp::own. The same source therefore compiles, with the same values, on both.
#pragma once

#include "virt/whp/whp_defs.h"

#ifdef _WIN32
#include <windows.h>
#include <winhvplatformdefs.h>
#else
namespace virt::whp {
using namespace ::virt::whp::own;  // NOLINT(google-build-using-namespace)
}  // namespace virt::whp
#endif

#ifdef _WIN32
// Our definitions must describe exactly the SDK's ABI: same sizes, offsets and values. They are
// what the Linux-hosted mock suite exercises, so a mismatch here would make that suite lie.
namespace virt::whp::abi_check {
namespace own = ::virt::whp::own;

#define VIRT_WHP_SAME_SIZE(T) \
  static_assert(sizeof(own::T) == sizeof(::T) && alignof(own::T) == alignof(::T), #T)
#define VIRT_WHP_SAME_OFFSET(T, m) \
  static_assert(offsetof(own::T, m) == offsetof(::T, m), #T "::" #m)
#define VIRT_WHP_SAME_VALUE(e) \
  static_assert(static_cast<uint64_t>(own::e) == static_cast<uint64_t>(::e), #e)

static_assert(sizeof(own::HRESULT) == sizeof(::HRESULT));
static_assert(kHrOk == S_OK && kHrInvalidArg == E_INVALIDARG && kHrOutOfMemory == E_OUTOFMEMORY &&
              kHrAccessDenied == E_ACCESSDENIED && kHrNotImplemented == E_NOTIMPL &&
              kHrModuleNotFound == HRESULT_FROM_WIN32(ERROR_MOD_NOT_FOUND) &&
              kHrProcNotFound == HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND));

VIRT_WHP_SAME_SIZE(WHV_CAPABILITY_FEATURES);
VIRT_WHP_SAME_SIZE(WHV_EXTENDED_VM_EXITS);
VIRT_WHP_SAME_SIZE(WHV_X64_CPUID_RESULT);
VIRT_WHP_SAME_OFFSET(WHV_X64_CPUID_RESULT, Eax);
VIRT_WHP_SAME_OFFSET(WHV_X64_CPUID_RESULT, Edx);
VIRT_WHP_SAME_SIZE(WHV_CPUID_OUTPUT);
VIRT_WHP_SAME_OFFSET(WHV_CPUID_OUTPUT, Ebx);
VIRT_WHP_SAME_OFFSET(WHV_CPUID_OUTPUT, Edx);
VIRT_WHP_SAME_SIZE(WHV_INTERNAL_ACTIVITY_REGISTER);
VIRT_WHP_SAME_SIZE(WHV_X64_APIC_INIT_SIPI_CONTEXT);
VIRT_WHP_SAME_OFFSET(WHV_X64_APIC_INIT_SIPI_CONTEXT, ApicIcr);
VIRT_WHP_SAME_SIZE(WHV_UINT128);
VIRT_WHP_SAME_SIZE(WHV_X64_FP_REGISTER);
VIRT_WHP_SAME_SIZE(WHV_X64_FP_CONTROL_STATUS_REGISTER);
VIRT_WHP_SAME_OFFSET(WHV_X64_FP_CONTROL_STATUS_REGISTER, FpTag);
VIRT_WHP_SAME_OFFSET(WHV_X64_FP_CONTROL_STATUS_REGISTER, LastFpRip);
VIRT_WHP_SAME_SIZE(WHV_X64_XMM_CONTROL_STATUS_REGISTER);
VIRT_WHP_SAME_OFFSET(WHV_X64_XMM_CONTROL_STATUS_REGISTER, XmmStatusControl);
VIRT_WHP_SAME_SIZE(WHV_X64_SEGMENT_REGISTER);
VIRT_WHP_SAME_OFFSET(WHV_X64_SEGMENT_REGISTER, Selector);
VIRT_WHP_SAME_OFFSET(WHV_X64_SEGMENT_REGISTER, Attributes);
VIRT_WHP_SAME_SIZE(WHV_X64_TABLE_REGISTER);
VIRT_WHP_SAME_OFFSET(WHV_X64_TABLE_REGISTER, Limit);
VIRT_WHP_SAME_OFFSET(WHV_X64_TABLE_REGISTER, Base);
VIRT_WHP_SAME_SIZE(WHV_REGISTER_VALUE);
VIRT_WHP_SAME_SIZE(WHV_VP_EXIT_CONTEXT);
VIRT_WHP_SAME_OFFSET(WHV_VP_EXIT_CONTEXT, Cs);
VIRT_WHP_SAME_OFFSET(WHV_VP_EXIT_CONTEXT, Rip);
VIRT_WHP_SAME_OFFSET(WHV_VP_EXIT_CONTEXT, Rflags);
VIRT_WHP_SAME_SIZE(WHV_MEMORY_ACCESS_CONTEXT);
VIRT_WHP_SAME_OFFSET(WHV_MEMORY_ACCESS_CONTEXT, InstructionBytes);
VIRT_WHP_SAME_OFFSET(WHV_MEMORY_ACCESS_CONTEXT, AccessInfo);
VIRT_WHP_SAME_OFFSET(WHV_MEMORY_ACCESS_CONTEXT, Gpa);
VIRT_WHP_SAME_SIZE(WHV_X64_IO_PORT_ACCESS_CONTEXT);
VIRT_WHP_SAME_OFFSET(WHV_X64_IO_PORT_ACCESS_CONTEXT, AccessInfo);
VIRT_WHP_SAME_OFFSET(WHV_X64_IO_PORT_ACCESS_CONTEXT, PortNumber);
VIRT_WHP_SAME_OFFSET(WHV_X64_IO_PORT_ACCESS_CONTEXT, Rax);
VIRT_WHP_SAME_SIZE(WHV_X64_MSR_ACCESS_CONTEXT);
VIRT_WHP_SAME_SIZE(WHV_X64_CPUID_ACCESS_CONTEXT);
VIRT_WHP_SAME_SIZE(WHV_VP_EXCEPTION_CONTEXT);
VIRT_WHP_SAME_SIZE(WHV_X64_UNSUPPORTED_FEATURE_CONTEXT);
VIRT_WHP_SAME_SIZE(WHV_RUN_VP_EXIT_CONTEXT);
VIRT_WHP_SAME_OFFSET(WHV_RUN_VP_EXIT_CONTEXT, VpContext);
VIRT_WHP_SAME_OFFSET(WHV_RUN_VP_EXIT_CONTEXT, MemoryAccess);
VIRT_WHP_SAME_OFFSET(WHV_RUN_VP_EXIT_CONTEXT, IoPortAccess);
VIRT_WHP_SAME_OFFSET(WHV_RUN_VP_EXIT_CONTEXT, CpuidAccess);
VIRT_WHP_SAME_OFFSET(WHV_RUN_VP_EXIT_CONTEXT, ApicInitSipi);
VIRT_WHP_SAME_OFFSET(WHV_REGISTER_VALUE, InternalActivity);
VIRT_WHP_SAME_SIZE(WHV_INTERRUPT_CONTROL);
VIRT_WHP_SAME_OFFSET(WHV_INTERRUPT_CONTROL, Destination);
VIRT_WHP_SAME_OFFSET(WHV_INTERRUPT_CONTROL, Vector);
VIRT_WHP_SAME_SIZE(WHV_TRIGGER_PARAMETERS);
VIRT_WHP_SAME_OFFSET(WHV_TRIGGER_PARAMETERS, Interrupt);

VIRT_WHP_SAME_VALUE(WHvCapabilityCodeHypervisorPresent);
VIRT_WHP_SAME_VALUE(WHvCapabilityCodeFeatures);
VIRT_WHP_SAME_VALUE(WHvCapabilityCodeExtendedVmExits);
VIRT_WHP_SAME_VALUE(WHvCapabilityCodeProcessorClockFrequency);
VIRT_WHP_SAME_VALUE(WHvPartitionPropertyCodeExtendedVmExits);
VIRT_WHP_SAME_VALUE(WHvPartitionPropertyCodeCpuidExitList);
VIRT_WHP_SAME_VALUE(WHvPartitionPropertyCodeCpuidResultList);
VIRT_WHP_SAME_VALUE(WHvPartitionPropertyCodeLocalApicEmulationMode);
VIRT_WHP_SAME_VALUE(WHvPartitionPropertyCodeProcessorCount);
VIRT_WHP_SAME_VALUE(WHvX64LocalApicEmulationModeNone);
VIRT_WHP_SAME_VALUE(WHvX64LocalApicEmulationModeXApic);
VIRT_WHP_SAME_VALUE(WHvX64LocalApicEmulationModeX2Apic);
VIRT_WHP_SAME_VALUE(WHvMapGpaRangeFlagRead);
VIRT_WHP_SAME_VALUE(WHvMapGpaRangeFlagWrite);
VIRT_WHP_SAME_VALUE(WHvMapGpaRangeFlagExecute);
VIRT_WHP_SAME_VALUE(WHvMapGpaRangeFlagTrackDirtyPages);
VIRT_WHP_SAME_VALUE(WHvX64RegisterRax);
VIRT_WHP_SAME_VALUE(WHvX64RegisterR15);
VIRT_WHP_SAME_VALUE(WHvX64RegisterRip);
VIRT_WHP_SAME_VALUE(WHvX64RegisterRflags);
VIRT_WHP_SAME_VALUE(WHvX64RegisterEs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterSs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterDs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterFs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterGs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterLdtr);
VIRT_WHP_SAME_VALUE(WHvX64RegisterTr);
VIRT_WHP_SAME_VALUE(WHvX64RegisterIdtr);
VIRT_WHP_SAME_VALUE(WHvX64RegisterGdtr);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCr0);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCr2);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCr3);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCr4);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCr8);
VIRT_WHP_SAME_VALUE(WHvX64RegisterXmm0);
VIRT_WHP_SAME_VALUE(WHvX64RegisterFpMmx0);
VIRT_WHP_SAME_VALUE(WHvX64RegisterFpControlStatus);
VIRT_WHP_SAME_VALUE(WHvX64RegisterXmmControlStatus);
VIRT_WHP_SAME_VALUE(WHvX64RegisterTsc);
VIRT_WHP_SAME_VALUE(WHvX64RegisterEfer);
VIRT_WHP_SAME_VALUE(WHvX64RegisterKernelGsBase);
VIRT_WHP_SAME_VALUE(WHvX64RegisterApicBase);
VIRT_WHP_SAME_VALUE(WHvX64RegisterPat);
VIRT_WHP_SAME_VALUE(WHvX64RegisterSysenterCs);
VIRT_WHP_SAME_VALUE(WHvX64RegisterSysenterEip);
VIRT_WHP_SAME_VALUE(WHvX64RegisterSysenterEsp);
VIRT_WHP_SAME_VALUE(WHvX64RegisterStar);
VIRT_WHP_SAME_VALUE(WHvX64RegisterLstar);
VIRT_WHP_SAME_VALUE(WHvX64RegisterCstar);
VIRT_WHP_SAME_VALUE(WHvX64RegisterSfmask);
VIRT_WHP_SAME_VALUE(WHvX64RegisterTscAux);
VIRT_WHP_SAME_VALUE(WHvRegisterInternalActivityState);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonNone);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonMemoryAccess);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64IoPortAccess);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonUnrecoverableException);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonInvalidVpRegisterValue);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonUnsupportedFeature);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64InterruptWindow);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64Halt);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64ApicEoi);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64MsrAccess);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64Cpuid);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonException);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonX64ApicInitSipiTrap);
VIRT_WHP_SAME_VALUE(WHvRunVpExitReasonCanceled);
VIRT_WHP_SAME_VALUE(WHvMemoryAccessRead);
VIRT_WHP_SAME_VALUE(WHvMemoryAccessWrite);
VIRT_WHP_SAME_VALUE(WHvMemoryAccessExecute);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTypeFixed);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTypeLowestPriority);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTypeNmi);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTypeInit);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTypeSipi);
VIRT_WHP_SAME_VALUE(WHvX64InterruptDestinationModePhysical);
VIRT_WHP_SAME_VALUE(WHvX64InterruptDestinationModeLogical);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTriggerModeEdge);
VIRT_WHP_SAME_VALUE(WHvX64InterruptTriggerModeLevel);
VIRT_WHP_SAME_VALUE(WHvTriggerTypeInterrupt);

// Issue 11: doorbells.
VIRT_WHP_SAME_SIZE(WHV_DOORBELL_MATCH_DATA);
VIRT_WHP_SAME_OFFSET(WHV_DOORBELL_MATCH_DATA, GuestAddress);
VIRT_WHP_SAME_OFFSET(WHV_DOORBELL_MATCH_DATA, Value);
VIRT_WHP_SAME_OFFSET(WHV_DOORBELL_MATCH_DATA, Length);

#undef VIRT_WHP_SAME_SIZE
#undef VIRT_WHP_SAME_OFFSET
#undef VIRT_WHP_SAME_VALUE
}  // namespace virt::whp::abi_check
#endif
