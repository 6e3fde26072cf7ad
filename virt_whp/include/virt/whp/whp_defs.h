// Our own copy of the WHP declarations the backend uses (WinHvPlatformDefs.h), for non-Windows
// builds; on Windows whp_types.h checks every one against the mingw-w64 header.
#pragma once
// The anonymous structs inside unions below mirror the SDK's layout and member names; GCC
// accepts them in C++ as an extension, which -Wpedantic would flag in every includer.
#pragma GCC system_header

#include <cstddef>
#include <cstdint>

namespace virt::whp::own {

using UINT8 = uint8_t;
using UINT16 = uint16_t;
using UINT32 = uint32_t;
using UINT64 = uint64_t;
using INT32 = int32_t;
using WINBOOL = int;
using HRESULT = int32_t;  // LONG: 32 bits on Windows x64
using HANDLE = void*;
using WHV_PARTITION_HANDLE = void*;
using WHV_TRIGGER_HANDLE = void*;
using WHV_GUEST_PHYSICAL_ADDRESS = UINT64;
using WHV_GUEST_VIRTUAL_ADDRESS = UINT64;

enum WHV_CAPABILITY_CODE {
  WHvCapabilityCodeHypervisorPresent = 0x00000000,
  WHvCapabilityCodeFeatures = 0x00000001,
  WHvCapabilityCodeExtendedVmExits = 0x00000002,
  WHvCapabilityCodeProcessorClockFrequency = 0x00001004,
};

union WHV_CAPABILITY_FEATURES {
  struct {
    UINT64 PartialUnmap : 1;
    UINT64 LocalApicEmulation : 1;
    UINT64 Xsave : 1;
    UINT64 DirtyPageTracking : 1;
    UINT64 SpeculationControl : 1;
    UINT64 ApicRemoteRead : 1;
    UINT64 IdleSuspend : 1;
    UINT64 VirtualPciDeviceSupport : 1;
    UINT64 IommuSupport : 1;
    UINT64 VpHotAddRemove : 1;
    UINT64 Reserved : 54;
  };
  UINT64 AsUINT64;
};

union WHV_EXTENDED_VM_EXITS {
  struct {
    UINT64 X64CpuidExit : 1;
    UINT64 X64MsrExit : 1;
    UINT64 ExceptionExit : 1;
    UINT64 X64RdtscExit : 1;
    UINT64 X64ApicSmiExitTrap : 1;
    UINT64 HypercallExit : 1;
    UINT64 X64ApicInitSipiExitTrap : 1;
    UINT64 Reserved : 57;
  };
  UINT64 AsUINT64;
};

enum WHV_PARTITION_PROPERTY_CODE {
  WHvPartitionPropertyCodeExtendedVmExits = 0x00000001,
  WHvPartitionPropertyCodeCpuidExitList = 0x00001003,
  WHvPartitionPropertyCodeCpuidResultList = 0x00001004,
  WHvPartitionPropertyCodeLocalApicEmulationMode = 0x00001005,
  WHvPartitionPropertyCodeReferenceTime = 0x0000100B,  // issue 12: UINT64, 100 ns units
  WHvPartitionPropertyCodeProcessorCount = 0x00001fff,
};

struct WHV_X64_CPUID_RESULT {
  UINT32 Function;
  UINT32 Reserved[3];
  UINT32 Eax;
  UINT32 Ebx;
  UINT32 Ecx;
  UINT32 Edx;
};

// WHvGetVirtualProcessorCpuidOutput's result: what the VP reads for one leaf and sub-leaf.
struct WHV_CPUID_OUTPUT {
  UINT32 Eax;
  UINT32 Ebx;
  UINT32 Ecx;
  UINT32 Edx;
};

enum WHV_X64_LOCAL_APIC_EMULATION_MODE {
  WHvX64LocalApicEmulationModeNone,
  WHvX64LocalApicEmulationModeXApic,
  WHvX64LocalApicEmulationModeX2Apic,
};

enum WHV_MAP_GPA_RANGE_FLAGS {
  WHvMapGpaRangeFlagNone = 0x00000000,
  WHvMapGpaRangeFlagRead = 0x00000001,
  WHvMapGpaRangeFlagWrite = 0x00000002,
  WHvMapGpaRangeFlagExecute = 0x00000004,
  WHvMapGpaRangeFlagTrackDirtyPages = 0x00000008,
};

enum WHV_REGISTER_NAME : UINT32 {
  WHvX64RegisterRax = 0x00000000,
  WHvX64RegisterRcx = 0x00000001,
  WHvX64RegisterRdx = 0x00000002,
  WHvX64RegisterRbx = 0x00000003,
  WHvX64RegisterRsp = 0x00000004,
  WHvX64RegisterRbp = 0x00000005,
  WHvX64RegisterRsi = 0x00000006,
  WHvX64RegisterRdi = 0x00000007,
  WHvX64RegisterR8 = 0x00000008,
  WHvX64RegisterR9 = 0x00000009,
  WHvX64RegisterR10 = 0x0000000A,
  WHvX64RegisterR11 = 0x0000000B,
  WHvX64RegisterR12 = 0x0000000C,
  WHvX64RegisterR13 = 0x0000000D,
  WHvX64RegisterR14 = 0x0000000E,
  WHvX64RegisterR15 = 0x0000000F,
  WHvX64RegisterRip = 0x00000010,
  WHvX64RegisterRflags = 0x00000011,
  WHvX64RegisterEs = 0x00000012,
  WHvX64RegisterCs = 0x00000013,
  WHvX64RegisterSs = 0x00000014,
  WHvX64RegisterDs = 0x00000015,
  WHvX64RegisterFs = 0x00000016,
  WHvX64RegisterGs = 0x00000017,
  WHvX64RegisterLdtr = 0x00000018,
  WHvX64RegisterTr = 0x00000019,
  WHvX64RegisterIdtr = 0x0000001A,
  WHvX64RegisterGdtr = 0x0000001B,
  WHvX64RegisterCr0 = 0x0000001C,
  WHvX64RegisterCr2 = 0x0000001D,
  WHvX64RegisterCr3 = 0x0000001E,
  WHvX64RegisterCr4 = 0x0000001F,
  WHvX64RegisterCr8 = 0x00000020,
  // Issue 12 (vCPU state): debug registers and XCR0.
  WHvX64RegisterDr0 = 0x00000021,
  WHvX64RegisterDr1 = 0x00000022,
  WHvX64RegisterDr2 = 0x00000023,
  WHvX64RegisterDr3 = 0x00000024,
  WHvX64RegisterDr6 = 0x00000025,
  WHvX64RegisterDr7 = 0x00000026,
  WHvX64RegisterXCr0 = 0x00000027,
  WHvX64RegisterXmm0 = 0x00001000,
  WHvX64RegisterFpMmx0 = 0x00001010,
  WHvX64RegisterFpControlStatus = 0x00001018,
  WHvX64RegisterXmmControlStatus = 0x00001019,
  WHvX64RegisterTsc = 0x00002000,
  WHvX64RegisterEfer = 0x00002001,
  WHvX64RegisterKernelGsBase = 0x00002002,
  WHvX64RegisterApicBase = 0x00002003,
  WHvX64RegisterPat = 0x00002004,
  WHvX64RegisterSysenterCs = 0x00002005,
  WHvX64RegisterSysenterEip = 0x00002006,
  WHvX64RegisterSysenterEsp = 0x00002007,
  WHvX64RegisterStar = 0x00002008,
  WHvX64RegisterLstar = 0x00002009,
  WHvX64RegisterCstar = 0x0000200A,
  WHvX64RegisterSfmask = 0x0000200B,
  WHvX64RegisterTscAux = 0x0000207B,
  // Issue 12 (vCPU state): the MTRRs (PhysBase/PhysMask 1-7 and Fix4k C8000-F8000 follow the
  // first one of each run: the backend adds the index) and the event registers.
  WHvX64RegisterMsrMtrrDefType = 0x0000200E,
  WHvX64RegisterMsrMtrrPhysBase0 = 0x00002010,
  WHvX64RegisterMsrMtrrPhysMask0 = 0x00002040,
  WHvX64RegisterMsrMtrrFix64k00000 = 0x00002070,
  WHvX64RegisterMsrMtrrFix16k80000 = 0x00002071,
  WHvX64RegisterMsrMtrrFix16kA0000 = 0x00002072,
  WHvX64RegisterMsrMtrrFix4kC0000 = 0x00002073,
  WHvRegisterPendingInterruption = 0x80000000,
  WHvRegisterInterruptState = 0x80000001,
  WHvRegisterPendingEvent = 0x80000002,
  WHvRegisterInternalActivityState = 0x80000005,
};

union alignas(16) WHV_UINT128 {
  struct {
    UINT64 Low64;
    UINT64 High64;
  };
  UINT32 Dword[4];
};

union WHV_X64_FP_REGISTER {
  struct {
    UINT64 Mantissa;
    UINT64 BiasedExponent : 15;
    UINT64 Sign : 1;
    UINT64 Reserved : 48;
  };
  WHV_UINT128 AsUINT128;
};

union WHV_X64_FP_CONTROL_STATUS_REGISTER {
  struct {
    UINT16 FpControl;
    UINT16 FpStatus;
    UINT8 FpTag;
    UINT8 Reserved;
    UINT16 LastFpOp;
    union {
      UINT64 LastFpRip;
      struct {
        UINT32 LastFpEip;
        UINT16 LastFpCs;
        UINT16 Reserved2;
      };
    };
  };
  WHV_UINT128 AsUINT128;
};

union WHV_X64_XMM_CONTROL_STATUS_REGISTER {
  struct {
    union {
      UINT64 LastFpRdp;
      struct {
        UINT32 LastFpDp;
        UINT16 LastFpDs;
        UINT16 Reserved;
      };
    };
    UINT32 XmmStatusControl;
    UINT32 XmmStatusControlMask;
  };
  WHV_UINT128 AsUINT128;
};

struct WHV_X64_SEGMENT_REGISTER {
  UINT64 Base;
  UINT32 Limit;
  UINT16 Selector;
  union {
    struct {
      UINT16 SegmentType : 4;
      UINT16 NonSystemSegment : 1;
      UINT16 DescriptorPrivilegeLevel : 2;
      UINT16 Present : 1;
      UINT16 Reserved : 4;
      UINT16 Available : 1;
      UINT16 Long : 1;
      UINT16 Default : 1;
      UINT16 Granularity : 1;
    };
    UINT16 Attributes;
  };
};

struct WHV_X64_TABLE_REGISTER {
  UINT16 Pad[3];
  UINT16 Limit;
  UINT64 Base;
};

// WHvRegisterInternalActivityState: why the VP is not executing. StartupSuspend is the
// wait-for-SIPI state of an application processor.
union WHV_INTERNAL_ACTIVITY_REGISTER {
  struct {
    UINT64 StartupSuspend : 1;
    UINT64 HaltSuspend : 1;
    UINT64 IdleSuspend : 1;
    UINT64 Reserved : 61;
  };
  UINT64 AsUINT64;
};

// Issue 12 (vCPU events): the registers a VP's pending and in-delivery events live in.
union WHV_X64_INTERRUPT_STATE_REGISTER {
  struct {
    UINT64 InterruptShadow : 1;
    UINT64 NmiMasked : 1;
    UINT64 Reserved : 62;
  };
  UINT64 AsUINT64;
};

enum WHV_X64_PENDING_INTERRUPTION_TYPE {
  WHvX64PendingInterrupt = 0,
  WHvX64PendingNmi = 2,
  WHvX64PendingException = 3,
};

// The event being delivered (injected) into the VP.
union WHV_X64_PENDING_INTERRUPTION_REGISTER {
  struct {
    UINT32 InterruptionPending : 1;
    UINT32 InterruptionType : 3;  // WHV_X64_PENDING_INTERRUPTION_TYPE
    UINT32 DeliverErrorCode : 1;
    UINT32 InstructionLength : 4;
    UINT32 NestedEvent : 1;
    UINT32 Reserved : 6;
    UINT32 InterruptionVector : 16;
    UINT32 ErrorCode;
  };
  UINT64 AsUINT64;
};

enum WHV_X64_PENDING_EVENT_TYPE {
  WHvX64PendingEventException = 0,
  WHvX64PendingEventExtInt = 5,
};

// WHvRegisterPendingEvent as an exception raised and not yet delivered.
union WHV_X64_PENDING_EXCEPTION_EVENT {
  struct {
    UINT32 EventPending : 1;
    UINT32 EventType : 3;  // WHV_X64_PENDING_EVENT_TYPE
    UINT32 Reserved0 : 4;
    UINT32 DeliverErrorCode : 1;
    UINT32 Reserved1 : 7;
    UINT32 Vector : 16;
    UINT32 ErrorCode;
    UINT64 ExceptionParameter;
  };
  WHV_UINT128 AsUINT128;
};

union WHV_REGISTER_VALUE {
  WHV_UINT128 Reg128;
  UINT64 Reg64;
  UINT32 Reg32;
  UINT16 Reg16;
  UINT8 Reg8;
  WHV_X64_FP_REGISTER Fp;
  WHV_X64_FP_CONTROL_STATUS_REGISTER FpControlStatus;
  WHV_X64_XMM_CONTROL_STATUS_REGISTER XmmControlStatus;
  WHV_X64_SEGMENT_REGISTER Segment;
  WHV_X64_TABLE_REGISTER Table;
  WHV_X64_INTERRUPT_STATE_REGISTER InterruptState;        // issue 12
  WHV_X64_PENDING_INTERRUPTION_REGISTER PendingInterruption;  // issue 12
  WHV_X64_PENDING_EXCEPTION_EVENT ExceptionEvent;         // issue 12
  WHV_INTERNAL_ACTIVITY_REGISTER InternalActivity;
};

enum WHV_RUN_VP_EXIT_REASON {
  WHvRunVpExitReasonNone = 0x00000000,
  WHvRunVpExitReasonMemoryAccess = 0x00000001,
  WHvRunVpExitReasonX64IoPortAccess = 0x00000002,
  WHvRunVpExitReasonUnrecoverableException = 0x00000004,
  WHvRunVpExitReasonInvalidVpRegisterValue = 0x00000005,
  WHvRunVpExitReasonUnsupportedFeature = 0x00000006,
  WHvRunVpExitReasonX64InterruptWindow = 0x00000007,
  WHvRunVpExitReasonX64Halt = 0x00000008,
  WHvRunVpExitReasonX64ApicEoi = 0x00000009,
  WHvRunVpExitReasonX64MsrAccess = 0x00001000,
  WHvRunVpExitReasonX64Cpuid = 0x00001001,
  WHvRunVpExitReasonException = 0x00001002,
  WHvRunVpExitReasonX64ApicInitSipiTrap = 0x00001006,
  WHvRunVpExitReasonCanceled = 0x00002001,
};

union WHV_X64_VP_EXECUTION_STATE {
  struct {
    UINT16 Cpl : 2;
    UINT16 Cr0Pe : 1;
    UINT16 Cr0Am : 1;
    UINT16 EferLma : 1;
    UINT16 DebugActive : 1;
    UINT16 InterruptionPending : 1;
    UINT16 Reserved0 : 5;
    UINT16 InterruptShadow : 1;
    UINT16 Reserved1 : 3;
  };
  UINT16 AsUINT16;
};

struct WHV_VP_EXIT_CONTEXT {
  WHV_X64_VP_EXECUTION_STATE ExecutionState;
  UINT8 InstructionLength : 4;
  UINT8 Cr8 : 4;
  UINT8 Reserved;
  UINT32 Reserved2;
  WHV_X64_SEGMENT_REGISTER Cs;
  UINT64 Rip;
  UINT64 Rflags;
};

union WHV_MEMORY_ACCESS_INFO {
  struct {
    UINT32 AccessType : 2;  // WHV_MEMORY_ACCESS_TYPE: read 0, write 1, execute 2
    UINT32 GpaUnmapped : 1;
    UINT32 GvaValid : 1;
    UINT32 Reserved : 28;
  };
  UINT32 AsUINT32;
};

enum WHV_MEMORY_ACCESS_TYPE {
  WHvMemoryAccessRead = 0,
  WHvMemoryAccessWrite = 1,
  WHvMemoryAccessExecute = 2,
};

struct WHV_MEMORY_ACCESS_CONTEXT {
  UINT8 InstructionByteCount;
  UINT8 Reserved[3];
  UINT8 InstructionBytes[16];
  WHV_MEMORY_ACCESS_INFO AccessInfo;
  WHV_GUEST_PHYSICAL_ADDRESS Gpa;
  WHV_GUEST_VIRTUAL_ADDRESS Gva;
};

union WHV_X64_IO_PORT_ACCESS_INFO {
  struct {
    UINT32 IsWrite : 1;
    UINT32 AccessSize : 3;
    UINT32 StringOp : 1;
    UINT32 RepPrefix : 1;
    UINT32 Reserved : 26;
  };
  UINT32 AsUINT32;
};

struct WHV_X64_IO_PORT_ACCESS_CONTEXT {
  UINT8 InstructionByteCount;
  UINT8 Reserved[3];
  UINT8 InstructionBytes[16];
  WHV_X64_IO_PORT_ACCESS_INFO AccessInfo;
  UINT16 PortNumber;
  UINT16 Reserved2[3];
  UINT64 Rax;
  UINT64 Rcx;
  UINT64 Rsi;
  UINT64 Rdi;
  WHV_X64_SEGMENT_REGISTER Ds;
  WHV_X64_SEGMENT_REGISTER Es;
};

struct WHV_X64_MSR_ACCESS_CONTEXT {
  UINT32 AccessInfo;  // bit 0: IsWrite
  UINT32 MsrNumber;
  UINT64 Rax;
  UINT64 Rdx;
};

struct WHV_X64_CPUID_ACCESS_CONTEXT {
  UINT64 Rax;
  UINT64 Rcx;
  UINT64 Rdx;
  UINT64 Rbx;
  UINT64 DefaultResultRax;
  UINT64 DefaultResultRcx;
  UINT64 DefaultResultRdx;
  UINT64 DefaultResultRbx;
};

struct WHV_VP_EXCEPTION_CONTEXT {
  UINT8 InstructionByteCount;
  UINT8 Reserved[3];
  UINT8 InstructionBytes[16];
  UINT32 ExceptionInfo;
  UINT8 ExceptionType;
  UINT8 Reserved2[3];
  UINT32 ErrorCode;
  UINT64 ExceptionParameter;
};

struct WHV_X64_UNSUPPORTED_FEATURE_CONTEXT {
  UINT32 FeatureCode;
  UINT32 Reserved;
  UINT64 FeatureParameter;
};

struct WHV_X64_APIC_EOI_CONTEXT {
  UINT32 InterruptVector;
};

// X64ApicInitSipiTrap: the ICR value of the guest's INIT or SIPI (needs
// WHV_EXTENDED_VM_EXITS.X64ApicInitSipiExitTrap).
struct WHV_X64_APIC_INIT_SIPI_CONTEXT {
  UINT64 ApicIcr;
};

struct WHV_RUN_VP_EXIT_CONTEXT {
  WHV_RUN_VP_EXIT_REASON ExitReason;
  UINT32 Reserved;
  WHV_VP_EXIT_CONTEXT VpContext;
  union {
    WHV_MEMORY_ACCESS_CONTEXT MemoryAccess;
    WHV_X64_IO_PORT_ACCESS_CONTEXT IoPortAccess;
    WHV_X64_MSR_ACCESS_CONTEXT MsrAccess;
    WHV_X64_CPUID_ACCESS_CONTEXT CpuidAccess;
    WHV_VP_EXCEPTION_CONTEXT VpException;
    WHV_X64_UNSUPPORTED_FEATURE_CONTEXT UnsupportedFeature;
    WHV_X64_APIC_EOI_CONTEXT ApicEoi;
    WHV_X64_APIC_INIT_SIPI_CONTEXT ApicInitSipi;
    // The SDK's largest member (WHV_HYPERCALL_CONTEXT: 176 bytes, 16-byte aligned).
    WHV_UINT128 LargestMember[11];
  };
};

enum WHV_INTERRUPT_TYPE {
  WHvX64InterruptTypeFixed = 0,
  WHvX64InterruptTypeLowestPriority = 1,
  WHvX64InterruptTypeNmi = 4,
  WHvX64InterruptTypeInit = 5,
  WHvX64InterruptTypeSipi = 6,
  WHvX64InterruptTypeLocalInt1 = 9,
};

enum WHV_INTERRUPT_DESTINATION_MODE {
  WHvX64InterruptDestinationModePhysical,
  WHvX64InterruptDestinationModeLogical,
};

enum WHV_INTERRUPT_TRIGGER_MODE {
  WHvX64InterruptTriggerModeEdge,
  WHvX64InterruptTriggerModeLevel,
};

struct WHV_INTERRUPT_CONTROL {
  UINT64 Type : 8;
  UINT64 DestinationMode : 4;
  UINT64 TriggerMode : 4;
  UINT64 Reserved : 48;
  UINT32 Destination;
  UINT32 Vector;
};

enum WHV_TRIGGER_TYPE {
  WHvTriggerTypeInterrupt = 0,
  WHvTriggerTypeSynicEvent = 1,
  WHvTriggerTypeDeviceInterrupt = 2,
};

struct WHV_SYNIC_EVENT_PARAMETERS {
  UINT32 VpIndex;
  UINT8 TargetSint;
  UINT8 Reserved;
  UINT16 FlagNumber;
};

struct WHV_TRIGGER_PARAMETERS {
  WHV_TRIGGER_TYPE TriggerType;
  UINT32 Reserved;
  union {
    WHV_INTERRUPT_CONTROL Interrupt;
    WHV_SYNIC_EVENT_PARAMETERS SynicEvent;
    struct {
      UINT64 LogicalDeviceId;
      UINT64 MsiAddress;
      UINT32 MsiData;
      UINT32 Reserved;
    } DeviceInterrupt;
  };
};

// Issue 11 (doorbells): WHvRegisterPartitionDoorbellEvent's match. A guest write to
// GuestAddress (a guest physical address: WHP has no port I/O doorbells) signals the event; with
// MatchOnLength only a write of Length (1, 2, 4 or 8) bytes, else Length is 0 and any width
// rings; with MatchOnValue (which needs MatchOnLength) only a write of Value, else Value is 0.
// WHvUnregisterPartitionDoorbellEvent finds the registration by these exact fields.
struct WHV_DOORBELL_MATCH_DATA {
  WHV_GUEST_PHYSICAL_ADDRESS GuestAddress;
  UINT64 Value;
  UINT32 Length;
  UINT32 MatchOnValue : 1;
  UINT32 MatchOnLength : 1;
  UINT32 Reserved : 30;
};
static_assert(sizeof(WHV_DOORBELL_MATCH_DATA) == 24);
static_assert(offsetof(WHV_DOORBELL_MATCH_DATA, Value) == 8);
static_assert(offsetof(WHV_DOORBELL_MATCH_DATA, Length) == 16);

// The sizes WinHvPlatformDefs.h asserts (C_ASSERT) for the same types.
static_assert(sizeof(WHV_CAPABILITY_FEATURES) == 8);
static_assert(sizeof(WHV_EXTENDED_VM_EXITS) == 8);
static_assert(sizeof(WHV_X64_CPUID_RESULT) == 32);
static_assert(sizeof(WHV_CPUID_OUTPUT) == 16);
static_assert(sizeof(WHV_INTERNAL_ACTIVITY_REGISTER) == 8);
static_assert(sizeof(WHV_X64_APIC_INIT_SIPI_CONTEXT) == 8);
static_assert(sizeof(WHV_UINT128) == 16 && alignof(WHV_UINT128) == 16);
static_assert(sizeof(WHV_X64_FP_REGISTER) == 16);
static_assert(sizeof(WHV_X64_FP_CONTROL_STATUS_REGISTER) == 16);
static_assert(sizeof(WHV_X64_XMM_CONTROL_STATUS_REGISTER) == 16);
static_assert(sizeof(WHV_X64_SEGMENT_REGISTER) == 16);
static_assert(sizeof(WHV_X64_TABLE_REGISTER) == 16);
static_assert(sizeof(WHV_X64_INTERRUPT_STATE_REGISTER) == 8);
static_assert(sizeof(WHV_X64_PENDING_INTERRUPTION_REGISTER) == 8);
static_assert(sizeof(WHV_X64_PENDING_EXCEPTION_EVENT) == 16);
static_assert(sizeof(WHV_REGISTER_VALUE) == 16 && alignof(WHV_REGISTER_VALUE) == 16);
static_assert(sizeof(WHV_X64_VP_EXECUTION_STATE) == 2);
static_assert(sizeof(WHV_VP_EXIT_CONTEXT) == 40);
static_assert(sizeof(WHV_MEMORY_ACCESS_INFO) == 4);
static_assert(sizeof(WHV_MEMORY_ACCESS_CONTEXT) == 40);
static_assert(sizeof(WHV_X64_IO_PORT_ACCESS_INFO) == 4);
static_assert(sizeof(WHV_X64_IO_PORT_ACCESS_CONTEXT) == 96);
static_assert(sizeof(WHV_X64_MSR_ACCESS_CONTEXT) == 24);
static_assert(sizeof(WHV_X64_CPUID_ACCESS_CONTEXT) == 64);
static_assert(sizeof(WHV_VP_EXCEPTION_CONTEXT) == 40);
static_assert(sizeof(WHV_X64_UNSUPPORTED_FEATURE_CONTEXT) == 16);
static_assert(sizeof(WHV_RUN_VP_EXIT_CONTEXT) == 224);
static_assert(offsetof(WHV_RUN_VP_EXIT_CONTEXT, VpContext) == 8);
static_assert(offsetof(WHV_RUN_VP_EXIT_CONTEXT, MemoryAccess) == 48);
static_assert(offsetof(WHV_RUN_VP_EXIT_CONTEXT, ApicInitSipi) == 48);
static_assert(sizeof(WHV_INTERRUPT_CONTROL) == 16);
static_assert(offsetof(WHV_INTERRUPT_CONTROL, Destination) == 8);
static_assert(offsetof(WHV_INTERRUPT_CONTROL, Vector) == 12);
static_assert(sizeof(WHV_SYNIC_EVENT_PARAMETERS) == 8);
static_assert(sizeof(WHV_TRIGGER_PARAMETERS) == 32);
static_assert(offsetof(WHV_TRIGGER_PARAMETERS, Interrupt) == 8);
static_assert(sizeof(WHV_X64_LOCAL_APIC_EMULATION_MODE) == 4);
static_assert(sizeof(WHV_RUN_VP_EXIT_REASON) == 4);

}  // namespace virt::whp::own

namespace virt::whp {

// HRESULTs the backend and its tests name (winerror.h values; on Windows those are macros, so
// these constants carry other names).
inline constexpr int32_t kHrOk = 0;
inline constexpr int32_t kHrInvalidArg = static_cast<int32_t>(0x80070057);     // E_INVALIDARG
inline constexpr int32_t kHrOutOfMemory = static_cast<int32_t>(0x8007000E);    // E_OUTOFMEMORY
inline constexpr int32_t kHrAccessDenied = static_cast<int32_t>(0x80070005);   // E_ACCESSDENIED
inline constexpr int32_t kHrNotImplemented = static_cast<int32_t>(0x80004001); // E_NOTIMPL
// HRESULT_FROM_WIN32(ERROR_MOD_NOT_FOUND / ERROR_PROC_NOT_FOUND): LoadLibrary/GetProcAddress.
inline constexpr int32_t kHrModuleNotFound = static_cast<int32_t>(0x8007007E);
inline constexpr int32_t kHrProcNotFound = static_cast<int32_t>(0x8007007F);
// Issue 11: ERROR_HV_INVALID_PARAMETER (HV_STATUS_INVALID_PARAMETER as an HRESULT), which
// WHvRegisterPartitionDoorbellEvent answers for a doorbell that conflicts with one already at the
// same address. Not in the mingw-w64 headers.
inline constexpr int32_t kHrHvInvalidParameter = static_cast<int32_t>(0xC0350005);

}  // namespace virt::whp
