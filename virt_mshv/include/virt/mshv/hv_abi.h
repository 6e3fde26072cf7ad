// The Microsoft Hypervisor x64 ABI the MSHV backend uses: hypercall inputs, registers, messages.
#pragma once

// Upstream names from the kernel's hvgdk_mini.h / hvhdk.h, as types and constexpr values in
// namespace virt::mshv (see mshv_abi.h). Sizes and offsets are checked against the reference.

#include <cstddef>
#include <cstdint>

namespace virt::mshv {

// ---- hypercalls (through MSHV_ROOT_HVCALL) -----------------------------------------------------
// Codes from include/hyperv/hvgdk_mini.h (HV_CALL_CODE). The kernel passes through only the
// codes in drivers/hv/mshv_root_main.c mshv_passthru_hvcalls[]; each one used here is there.
inline constexpr uint16_t HVCALL_GET_PARTITION_PROPERTY = 0x0044;
inline constexpr uint16_t HVCALL_SET_PARTITION_PROPERTY = 0x0045;  // async: partition fd only
inline constexpr uint16_t HVCALL_INSTALL_INTERCEPT = 0x004d;
inline constexpr uint16_t HVCALL_GET_VP_REGISTERS = 0x0050;
inline constexpr uint16_t HVCALL_SET_VP_REGISTERS = 0x0051;
inline constexpr uint16_t HVCALL_ASSERT_VIRTUAL_INTERRUPT = 0x0094;
inline constexpr uint16_t HVCALL_GET_VP_CPUID_VALUES = 0x00f4;

inline constexpr uint16_t HV_STATUS_SUCCESS = 0;
// The hypervisor needs more memory from the root. mshv_ioctl_passthru_hvcall() then deposits a
// page into the partition and fails the ioctl with EAGAIN, leaving this status: call again.
inline constexpr uint16_t HV_STATUS_INSUFFICIENT_MEMORY = 0x000B;
inline constexpr uint16_t HV_STATUS_INVALID_VP_INDEX = 0x000E;

// Input header of HVCALL_GET/SET_VP_REGISTERS, followed by u32 names[] / hv_register_assoc[].
struct hv_input_get_vp_registers {
  uint64_t partitionid;  // filled in by the kernel
  uint32_t vpindex;
  uint8_t input_vtl;
  uint8_t rsvd_z8;
  uint16_t rsvd_z16;
};
using hv_input_set_vp_registers = hv_input_get_vp_registers;

// ---- partition properties (hvhdk.h enum hv_partition_property_code) ----------------------------
enum hv_partition_property_code : uint32_t {
  // 1 freezes the partition's reference time, 0 lets it run; REFERENCE_TIME can only be
  // written while it is frozen.
  HV_PARTITION_PROPERTY_TIME_FREEZE = 0x00030003,
  // The partition's reference time in 100 ns units.
  HV_PARTITION_PROPERTY_REFERENCE_TIME = 0x00030005,
  // 1: the hypervisor tracks accessed/dirty bits of every GPA page of the partition (read
  // with MSHV_GET_GPAP_ACCESS_BITMAP).
  HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING = 0x00050005,
};

struct hv_input_get_partition_property {
  uint64_t partition_id;  // filled in by the kernel
  uint32_t property_code;  // hv_partition_property_code
  uint32_t padding;
};
struct hv_output_get_partition_property {
  uint64_t property_value;
};
struct hv_input_set_partition_property {
  uint64_t partition_id;  // filled in by the kernel
  uint32_t property_code;
  uint32_t padding;
  uint64_t property_value;
};

// hv_register_value: a 16-byte union; the backend reads the members it needs with memcpy.
struct hv_register_value {
  uint64_t low;
  uint64_t high;
};

struct hv_x64_segment_register {
  uint64_t base;
  uint32_t limit;
  uint16_t selector;
  // segment_type:4 non_system_segment:1 descriptor_privilege_level:2 present:1 reserved:4
  // available:1 _long:1 _default:1 granularity:1
  uint16_t attributes;
};

struct hv_x64_table_register {
  uint16_t pad[3];
  uint16_t limit;
  uint64_t base;
};

struct hv_register_assoc {
  uint32_t name;
  uint32_t reserved1;
  uint64_t reserved2;
  hv_register_value value;
};

enum hv_interrupt_type : uint32_t {
  HV_X64_INTERRUPT_TYPE_FIXED = 0,
  HV_X64_INTERRUPT_TYPE_LOWESTPRIORITY = 1,
  HV_X64_INTERRUPT_TYPE_SMI = 2,
  HV_X64_INTERRUPT_TYPE_REMOTEREAD = 3,
  HV_X64_INTERRUPT_TYPE_NMI = 4,
  HV_X64_INTERRUPT_TYPE_INIT = 5,
  HV_X64_INTERRUPT_TYPE_SIPI = 6,
  HV_X64_INTERRUPT_TYPE_EXTINT = 7,
};
// hv_interrupt_control: interrupt_type in bits 0-31, then these.
inline constexpr uint64_t HV_INTERRUPT_CONTROL_LEVEL_TRIGGERED = 1ull << 32;
inline constexpr uint64_t HV_INTERRUPT_CONTROL_LOGICAL_DEST_MODE = 1ull << 33;

struct hv_input_assert_virtual_interrupt {
  uint64_t partition_id;  // filled in by the kernel
  uint64_t control;
  uint64_t dest_addr;  // APIC ID
  uint32_t vector;
  uint8_t target_vtl;
  uint8_t rsvd_z0;
  uint16_t rsvd_z1;
};

// ---- intercepts (hvgdk_mini.h) -----------------------------------------------------------------
// enum hv_intercept_type (the values this backend names).
enum hv_intercept_type : uint32_t {
  HV_INTERCEPT_TYPE_X64_CPUID = 0x00000002,  // parameter: the CPUID leaf (EAX)
  // Not installed by this backend: without it the hypervisor's LAPIC performs INIT/SIPI itself.
  HV_INTERCEPT_TYPE_X64_APIC_INIT_SIPI = 0x00000009,
};
// hv_input_install_intercept.access_type is a mask of these; CPUID is an execute access.
inline constexpr uint32_t HV_INTERCEPT_ACCESS_MASK_EXECUTE = 0x04;

// HVCALL_INSTALL_INTERCEPT input: partition-wide, so it works on a partition or vp fd. Its
// parameter is a u64 union (hv_intercept_parameters); for CPUID the low 32 bits are the leaf.
struct hv_input_install_intercept {
  uint64_t partition_id;  // filled in by the kernel
  uint32_t access_type;   // HV_INTERCEPT_ACCESS_MASK_*
  uint32_t intercept_type;
  uint64_t intercept_parameter;
};

// ---- CPUID values (hvhdk.h) --------------------------------------------------------------------
// HVCALL_GET_VP_CPUID_VALUES: a rep hypercall; the input header is followed by one
// hv_cpuid_leaf_info per rep, the output is one hv_output_get_vp_cpuid_values per rep.
struct hv_cpuid_leaf_info {
  uint32_t eax;
  uint32_t ecx;
  uint64_t xfem;  // ignored with HV_GET_VP_CPUID_VALUES_USE_VP_XFEM_XSS
  uint64_t xss;
};
// union hv_get_vp_cpuid_values_flags bits.
inline constexpr uint32_t HV_GET_VP_CPUID_VALUES_USE_VP_XFEM_XSS = 1u << 0;
inline constexpr uint32_t HV_GET_VP_CPUID_VALUES_APPLY_REGISTERED_VALUES = 1u << 1;

struct hv_input_get_vp_cpuid_values {
  uint64_t partition_id;  // filled in by the kernel
  uint32_t vp_index;      // must be a VP that exists (MSHV_CREATE_VP)
  uint32_t flags;         // HV_GET_VP_CPUID_VALUES_*
  uint32_t reserved;
  uint32_t padding;
  // hv_cpuid_leaf_info cpuid_leaf_info[];
};

struct hv_output_get_vp_cpuid_values {
  uint32_t eax;
  uint32_t ebx;
  uint32_t ecx;
  uint32_t edx;
};

// ---- register names (enum hv_register_name, x64) ----------------------------------------------
enum hv_register_name : uint32_t {
  // union hv_internal_activity_register: the VP's wait state (HV_INTERNAL_ACTIVITY_* bits).
  HV_REGISTER_INTERNAL_ACTIVITY_STATE = 0x00000004,
  // union hv_x64_pending_interruption_register: the event being delivered (HV_X64_PENDING_*).
  HV_REGISTER_PENDING_INTERRUPTION = 0x00010002,
  // union hv_x64_interrupt_state_register: interrupt shadow (bit 0), NMI masked (bit 1).
  HV_REGISTER_INTERRUPT_STATE = 0x00010003,
  // union hv_x64_pending_exception_event (128 bits): an exception raised, not yet delivered.
  HV_REGISTER_PENDING_EVENT0 = 0x00010004,
  HV_X64_REGISTER_RAX = 0x00020000,
  HV_X64_REGISTER_RCX = 0x00020001,
  HV_X64_REGISTER_RDX = 0x00020002,
  HV_X64_REGISTER_RBX = 0x00020003,
  HV_X64_REGISTER_RSP = 0x00020004,
  HV_X64_REGISTER_RBP = 0x00020005,
  HV_X64_REGISTER_RSI = 0x00020006,
  HV_X64_REGISTER_RDI = 0x00020007,
  HV_X64_REGISTER_R8 = 0x00020008,
  HV_X64_REGISTER_R9 = 0x00020009,
  HV_X64_REGISTER_R10 = 0x0002000A,
  HV_X64_REGISTER_R11 = 0x0002000B,
  HV_X64_REGISTER_R12 = 0x0002000C,
  HV_X64_REGISTER_R13 = 0x0002000D,
  HV_X64_REGISTER_R14 = 0x0002000E,
  HV_X64_REGISTER_R15 = 0x0002000F,
  HV_X64_REGISTER_RIP = 0x00020010,
  HV_X64_REGISTER_RFLAGS = 0x00020011,
  HV_X64_REGISTER_CR0 = 0x00040000,
  HV_X64_REGISTER_CR2 = 0x00040001,
  HV_X64_REGISTER_CR3 = 0x00040002,
  HV_X64_REGISTER_CR4 = 0x00040003,
  HV_X64_REGISTER_CR8 = 0x00040004,
  HV_X64_REGISTER_XFEM = 0x00040005,  // XCR0
  HV_X64_REGISTER_DR0 = 0x00050000,
  HV_X64_REGISTER_DR1 = 0x00050001,
  HV_X64_REGISTER_DR2 = 0x00050002,
  HV_X64_REGISTER_DR3 = 0x00050003,
  HV_X64_REGISTER_DR6 = 0x00050004,
  HV_X64_REGISTER_DR7 = 0x00050005,
  HV_X64_REGISTER_ES = 0x00060000,
  HV_X64_REGISTER_CS = 0x00060001,
  HV_X64_REGISTER_SS = 0x00060002,
  HV_X64_REGISTER_DS = 0x00060003,
  HV_X64_REGISTER_FS = 0x00060004,
  HV_X64_REGISTER_GS = 0x00060005,
  HV_X64_REGISTER_LDTR = 0x00060006,
  HV_X64_REGISTER_TR = 0x00060007,
  HV_X64_REGISTER_IDTR = 0x00070000,
  HV_X64_REGISTER_GDTR = 0x00070001,
  HV_X64_REGISTER_TSC = 0x00080000,
  HV_X64_REGISTER_EFER = 0x00080001,
  HV_X64_REGISTER_KERNEL_GS_BASE = 0x00080002,
  HV_X64_REGISTER_APIC_BASE = 0x00080003,
  HV_X64_REGISTER_PAT = 0x00080004,
  HV_X64_REGISTER_SYSENTER_CS = 0x00080005,
  HV_X64_REGISTER_SYSENTER_EIP = 0x00080006,
  HV_X64_REGISTER_SYSENTER_ESP = 0x00080007,
  HV_X64_REGISTER_STAR = 0x00080008,
  HV_X64_REGISTER_LSTAR = 0x00080009,
  HV_X64_REGISTER_CSTAR = 0x0008000A,
  HV_X64_REGISTER_SFMASK = 0x0008000B,
  HV_X64_REGISTER_MSR_MTRR_DEF_TYPE = 0x0008000E,
  HV_X64_REGISTER_MSR_MTRR_PHYS_BASE0 = 0x00080010,  // ... BASE7 = 0x00080017
  HV_X64_REGISTER_MSR_MTRR_PHYS_MASK0 = 0x00080040,  // ... MASK7 = 0x00080047
  HV_X64_REGISTER_MSR_MTRR_FIX64K00000 = 0x00080070,
  HV_X64_REGISTER_MSR_MTRR_FIX16K80000 = 0x00080071,
  HV_X64_REGISTER_MSR_MTRR_FIX16KA0000 = 0x00080072,
  HV_X64_REGISTER_MSR_MTRR_FIX4KC0000 = 0x00080073,  // ... FIX4KF8000 = 0x0008007A
  HV_X64_REGISTER_TSC_AUX = 0x0008007B,
};

// hv_x64_pending_interruption_register (64 bits): interruption_pending:1, interruption_type:3,
// deliver_error_code:1, instruction_length:4, nested_event:1, reserved:6,
// interruption_vector:16, error_code:32.
inline constexpr uint64_t HV_X64_PENDING_INTERRUPTION_PENDING = 1u << 0;
inline constexpr unsigned kHvPendingInterruptionTypeShift = 1;   // 3 bits
inline constexpr uint64_t HV_X64_PENDING_INTERRUPTION_DELIVER_ERROR_CODE = 1u << 4;
inline constexpr unsigned kHvPendingInterruptionLengthShift = 5;  // 4 bits
inline constexpr uint64_t HV_X64_PENDING_INTERRUPTION_NESTED_EVENT = 1u << 9;
inline constexpr unsigned kHvPendingInterruptionVectorShift = 16;  // 16 bits
inline constexpr unsigned kHvPendingInterruptionErrorCodeShift = 32;
// enum hv_x64_pending_interruption_type (the VMX event types the backend maps).
inline constexpr uint32_t HV_X64_PENDING_INTERRUPT = 0;
inline constexpr uint32_t HV_X64_PENDING_NMI = 2;
inline constexpr uint32_t HV_X64_PENDING_EXCEPTION = 3;

// hv_x64_interrupt_state_register bits.
inline constexpr uint64_t HV_X64_INTERRUPT_STATE_INTERRUPT_SHADOW = 1u << 0;
inline constexpr uint64_t HV_X64_INTERRUPT_STATE_NMI_MASKED = 1u << 1;

// hv_x64_pending_exception_event, low 64 bits: event_pending:1, event_type:3, reserved0:4,
// deliver_error_code:1, reserved1:7, vector:16, error_code:32; high 64 bits:
// exception_parameter (CR2 of a #PF, DR6 bits of a #DB).
inline constexpr uint64_t HV_X64_PENDING_EVENT_PENDING = 1u << 0;
inline constexpr unsigned kHvPendingEventTypeShift = 1;  // 3 bits
inline constexpr uint64_t HV_X64_PENDING_EVENT_DELIVER_ERROR_CODE = 1u << 8;
inline constexpr unsigned kHvPendingEventVectorShift = 16;  // 16 bits
inline constexpr unsigned kHvPendingEventErrorCodeShift = 32;
inline constexpr uint32_t HV_X64_PENDING_EVENT_EXCEPTION = 0;

// union hv_internal_activity_register bits (hvgdk_mini.h). An AP of a LAPIC partition is created
// in StartupSuspend and leaves it when the hypervisor's LAPIC takes a SIPI; HaltSuspend is a
// HLT waiting for an interrupt; IdleSuspend is derived state the hypervisor sets and clears.
inline constexpr uint64_t HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND = 1u << 0;
inline constexpr uint64_t HV_INTERNAL_ACTIVITY_HALT_SUSPEND = 1u << 1;
inline constexpr uint64_t HV_INTERNAL_ACTIVITY_IDLE_SUSPEND = 1u << 2;

// ---- intercept messages (mshv_run_vp.msg_buf) --------------------------------------------------
enum hv_message_type : uint32_t {
  HVMSG_NONE = 0x00000000,
  HVMSG_UNMAPPED_GPA = 0x80000000,
  HVMSG_GPA_INTERCEPT = 0x80000001,
  HVMSG_TIMER_EXPIRED = 0x80000010,
  HVMSG_INVALID_VP_REGISTER_VALUE = 0x80000020,
  HVMSG_UNRECOVERABLE_EXCEPTION = 0x80000021,
  HVMSG_UNSUPPORTED_FEATURE = 0x80000022,
  HVMSG_HYPERCALL_INTERCEPT = 0x80000050,
  HVMSG_X64_IO_PORT_INTERCEPT = 0x80010000,
  HVMSG_X64_MSR_INTERCEPT = 0x80010001,
  HVMSG_X64_CPUID_INTERCEPT = 0x80010002,
  HVMSG_X64_EXCEPTION_INTERCEPT = 0x80010003,
  HVMSG_X64_APIC_EOI = 0x80010004,
  HVMSG_X64_HALT = 0x80010007,
  HVMSG_X64_INTERRUPTION_DELIVERABLE = 0x80010008,
  HVMSG_X64_SIPI_INTERCEPT = 0x80010009,
};

inline constexpr size_t HV_MESSAGE_SIZE = 256;
inline constexpr size_t HV_MESSAGE_PAYLOAD_BYTE_COUNT = 240;

struct hv_message_header {
  uint32_t message_type;
  uint8_t payload_size;
  uint8_t message_flags;
  uint8_t reserved[2];
  uint64_t sender;
};

struct hv_message {
  hv_message_header header;
  uint8_t payload[HV_MESSAGE_PAYLOAD_BYTE_COUNT];
};

enum hv_intercept_access_type : uint8_t {
  HV_INTERCEPT_ACCESS_READ = 0,
  HV_INTERCEPT_ACCESS_WRITE = 1,
  HV_INTERCEPT_ACCESS_EXECUTE = 2,
};

// hv_x64_vp_execution_state bits (cpl:2 cr0_pe:1 cr0_am:1 efer_lma:1 ...).
inline constexpr uint16_t HV_X64_EXECUTION_STATE_CR0_PE = 1u << 2;
inline constexpr uint16_t HV_X64_EXECUTION_STATE_EFER_LMA = 1u << 4;
// hv_x64_segment_register.attributes bits.
inline constexpr uint16_t HV_X64_SEGMENT_ATTRIBUTE_LONG = 1u << 13;
inline constexpr uint16_t HV_X64_SEGMENT_ATTRIBUTE_DEFAULT = 1u << 14;

struct hv_x64_intercept_message_header {
  uint32_t vp_index;
  uint8_t instruction_length_cr8;  // instruction_length:4 (low), cr8:4
  uint8_t intercept_access_type;   // hv_intercept_access_type
  uint16_t execution_state;        // hv_x64_vp_execution_state
  hv_x64_segment_register cs_segment;
  uint64_t rip;
  uint64_t rflags;
};

// hv_x64_io_port_access_info bits.
inline constexpr uint8_t HV_X64_IO_PORT_ACCESS_SIZE_MASK = 0x07;
inline constexpr uint8_t HV_X64_IO_PORT_STRING_OP = 1u << 3;
inline constexpr uint8_t HV_X64_IO_PORT_REP_PREFIX = 1u << 4;

struct hv_x64_io_port_intercept_message {
  hv_x64_intercept_message_header header;
  uint16_t port_number;
  uint8_t access_info;
  uint8_t instruction_byte_count;
  uint32_t reserved;
  uint64_t rax;
  uint8_t instruction_bytes[16];
  hv_x64_segment_register ds_segment;
  hv_x64_segment_register es_segment;
  uint64_t rcx;
  uint64_t rsi;
  uint64_t rdi;
};

// hv_x64_memory_access_info bits.
inline constexpr uint8_t HV_X64_MEMORY_ACCESS_GVA_VALID = 1u << 0;
inline constexpr uint8_t HV_X64_MEMORY_ACCESS_GVA_GPA_VALID = 1u << 1;

struct hv_x64_memory_intercept_message {
  hv_x64_intercept_message_header header;
  uint32_t cache_type;
  uint8_t instruction_byte_count;
  uint8_t memory_access_info;
  uint8_t tpr_priority;
  uint8_t reserved1;
  uint64_t guest_virtual_address;
  uint64_t guest_physical_address;
  uint8_t instruction_bytes[16];
};

// HVMSG_X64_CPUID_INTERCEPT (hvhdk.h): the guest's EAX/ECX (and RDX/RBX) and the result the
// hypervisor would return. The VMM writes RAX..RDX and advances RIP by instruction_length.
struct hv_x64_cpuid_intercept_message {
  hv_x64_intercept_message_header header;
  uint64_t rax;
  uint64_t rcx;
  uint64_t rdx;
  uint64_t rbx;
  uint64_t default_result_rax;
  uint64_t default_result_rcx;
  uint64_t default_result_rdx;
  uint64_t default_result_rbx;
};

// ---- checks against the reference (mshv-abi.md) ------------------------------------------------
static_assert(sizeof(hv_input_get_vp_registers) == 16);
static_assert(offsetof(hv_input_get_vp_registers, partitionid) == 0);
static_assert(offsetof(hv_input_get_vp_registers, vpindex) == 8);
static_assert(offsetof(hv_input_get_vp_registers, input_vtl) == 12);
static_assert(offsetof(hv_input_get_vp_registers, rsvd_z8) == 13);
static_assert(offsetof(hv_input_get_vp_registers, rsvd_z16) == 14);
static_assert(sizeof(hv_register_value) == 16);
static_assert(sizeof(hv_register_assoc) == 32);
static_assert(offsetof(hv_register_assoc, name) == 0);
static_assert(offsetof(hv_register_assoc, reserved1) == 4);
static_assert(offsetof(hv_register_assoc, reserved2) == 8);
static_assert(offsetof(hv_register_assoc, value) == 16);
static_assert(sizeof(hv_x64_segment_register) == 16);
static_assert(offsetof(hv_x64_segment_register, base) == 0);
static_assert(offsetof(hv_x64_segment_register, limit) == 8);
static_assert(offsetof(hv_x64_segment_register, selector) == 12);
static_assert(offsetof(hv_x64_segment_register, attributes) == 14);
static_assert(sizeof(hv_x64_table_register) == 16);
static_assert(offsetof(hv_x64_table_register, limit) == 6);
static_assert(offsetof(hv_x64_table_register, base) == 8);
static_assert(sizeof(hv_input_assert_virtual_interrupt) == 32);
static_assert(offsetof(hv_input_assert_virtual_interrupt, partition_id) == 0);
static_assert(offsetof(hv_input_assert_virtual_interrupt, control) == 8);
static_assert(offsetof(hv_input_assert_virtual_interrupt, dest_addr) == 16);
static_assert(offsetof(hv_input_assert_virtual_interrupt, vector) == 24);
static_assert(offsetof(hv_input_assert_virtual_interrupt, target_vtl) == 28);
static_assert(offsetof(hv_input_assert_virtual_interrupt, rsvd_z0) == 29);
static_assert(offsetof(hv_input_assert_virtual_interrupt, rsvd_z1) == 30);

static_assert(sizeof(hv_message_header) == 16);
static_assert(offsetof(hv_message_header, message_type) == 0);
static_assert(offsetof(hv_message_header, payload_size) == 4);
static_assert(offsetof(hv_message_header, message_flags) == 5);
static_assert(offsetof(hv_message_header, reserved) == 6);
static_assert(offsetof(hv_message_header, sender) == 8);
static_assert(sizeof(hv_message) == HV_MESSAGE_SIZE);
static_assert(offsetof(hv_message, payload) == 16);
static_assert(sizeof(hv_x64_intercept_message_header) == 40);
static_assert(offsetof(hv_x64_intercept_message_header, vp_index) == 0);
static_assert(offsetof(hv_x64_intercept_message_header, instruction_length_cr8) == 4);
static_assert(offsetof(hv_x64_intercept_message_header, intercept_access_type) == 5);
static_assert(offsetof(hv_x64_intercept_message_header, execution_state) == 6);
static_assert(offsetof(hv_x64_intercept_message_header, cs_segment) == 8);
static_assert(offsetof(hv_x64_intercept_message_header, rip) == 24);
static_assert(offsetof(hv_x64_intercept_message_header, rflags) == 32);
static_assert(sizeof(hv_x64_io_port_intercept_message) == 128);
static_assert(offsetof(hv_x64_io_port_intercept_message, port_number) == 40);
static_assert(offsetof(hv_x64_io_port_intercept_message, access_info) == 42);
static_assert(offsetof(hv_x64_io_port_intercept_message, instruction_byte_count) == 43);
static_assert(offsetof(hv_x64_io_port_intercept_message, reserved) == 44);
static_assert(offsetof(hv_x64_io_port_intercept_message, rax) == 48);
static_assert(offsetof(hv_x64_io_port_intercept_message, instruction_bytes) == 56);
static_assert(offsetof(hv_x64_io_port_intercept_message, ds_segment) == 72);
static_assert(offsetof(hv_x64_io_port_intercept_message, es_segment) == 88);
static_assert(offsetof(hv_x64_io_port_intercept_message, rcx) == 104);
static_assert(offsetof(hv_x64_io_port_intercept_message, rsi) == 112);
static_assert(offsetof(hv_x64_io_port_intercept_message, rdi) == 120);
static_assert(sizeof(hv_x64_memory_intercept_message) == 80);
static_assert(offsetof(hv_x64_memory_intercept_message, cache_type) == 40);
static_assert(offsetof(hv_x64_memory_intercept_message, instruction_byte_count) == 44);
static_assert(offsetof(hv_x64_memory_intercept_message, memory_access_info) == 45);
static_assert(offsetof(hv_x64_memory_intercept_message, tpr_priority) == 46);
static_assert(offsetof(hv_x64_memory_intercept_message, reserved1) == 47);
static_assert(offsetof(hv_x64_memory_intercept_message, guest_virtual_address) == 48);
static_assert(offsetof(hv_x64_memory_intercept_message, guest_physical_address) == 56);
static_assert(offsetof(hv_x64_memory_intercept_message, instruction_bytes) == 64);

// ---- checks against the upstream headers (include/hyperv/hvgdk_mini.h, hvhdk.h, Linux 6.15) ----
static_assert(sizeof(hv_input_install_intercept) == 24);
static_assert(offsetof(hv_input_install_intercept, partition_id) == 0);
static_assert(offsetof(hv_input_install_intercept, access_type) == 8);
static_assert(offsetof(hv_input_install_intercept, intercept_type) == 12);
static_assert(offsetof(hv_input_install_intercept, intercept_parameter) == 16);
static_assert(sizeof(hv_cpuid_leaf_info) == 24);
static_assert(offsetof(hv_cpuid_leaf_info, eax) == 0);
static_assert(offsetof(hv_cpuid_leaf_info, ecx) == 4);
static_assert(offsetof(hv_cpuid_leaf_info, xfem) == 8);
static_assert(offsetof(hv_cpuid_leaf_info, xss) == 16);
static_assert(sizeof(hv_input_get_vp_cpuid_values) == 24);
static_assert(offsetof(hv_input_get_vp_cpuid_values, partition_id) == 0);
static_assert(offsetof(hv_input_get_vp_cpuid_values, vp_index) == 8);
static_assert(offsetof(hv_input_get_vp_cpuid_values, flags) == 12);
static_assert(offsetof(hv_input_get_vp_cpuid_values, reserved) == 16);
static_assert(offsetof(hv_input_get_vp_cpuid_values, padding) == 20);
static_assert(sizeof(hv_output_get_vp_cpuid_values) == 16);
static_assert(offsetof(hv_output_get_vp_cpuid_values, ebx) == 4);
static_assert(offsetof(hv_output_get_vp_cpuid_values, ecx) == 8);
static_assert(offsetof(hv_output_get_vp_cpuid_values, edx) == 12);
static_assert(sizeof(hv_x64_cpuid_intercept_message) == 104);
static_assert(offsetof(hv_x64_cpuid_intercept_message, rax) == 40);
static_assert(offsetof(hv_x64_cpuid_intercept_message, rcx) == 48);
static_assert(offsetof(hv_x64_cpuid_intercept_message, rdx) == 56);
static_assert(offsetof(hv_x64_cpuid_intercept_message, rbx) == 64);
static_assert(offsetof(hv_x64_cpuid_intercept_message, default_result_rax) == 72);
static_assert(offsetof(hv_x64_cpuid_intercept_message, default_result_rcx) == 80);
static_assert(offsetof(hv_x64_cpuid_intercept_message, default_result_rdx) == 88);
static_assert(offsetof(hv_x64_cpuid_intercept_message, default_result_rbx) == 96);
static_assert(HVCALL_INSTALL_INTERCEPT == 0x004d && HVCALL_GET_VP_CPUID_VALUES == 0x00f4);
static_assert(HV_REGISTER_INTERNAL_ACTIVITY_STATE == 0x00000004);
static_assert(HVCALL_GET_PARTITION_PROPERTY == 0x0044 && HVCALL_SET_PARTITION_PROPERTY == 0x0045);
static_assert(sizeof(hv_input_get_partition_property) == 16);
static_assert(offsetof(hv_input_get_partition_property, property_code) == 8);
static_assert(offsetof(hv_input_get_partition_property, padding) == 12);
static_assert(sizeof(hv_output_get_partition_property) == 8);
static_assert(sizeof(hv_input_set_partition_property) == 24);
static_assert(offsetof(hv_input_set_partition_property, property_code) == 8);
static_assert(offsetof(hv_input_set_partition_property, padding) == 12);
static_assert(offsetof(hv_input_set_partition_property, property_value) == 16);
static_assert(HV_PARTITION_PROPERTY_REFERENCE_TIME == 0x00030005 &&
              HV_PARTITION_PROPERTY_TIME_FREEZE == 0x00030003 &&
              HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING == 0x00050005);
static_assert(HV_REGISTER_PENDING_INTERRUPTION == 0x00010002 &&
              HV_REGISTER_INTERRUPT_STATE == 0x00010003 &&
              HV_REGISTER_PENDING_EVENT0 == 0x00010004);
static_assert(HV_X64_REGISTER_XFEM == 0x00040005 && HV_X64_REGISTER_DR7 == 0x00050005);
static_assert(HV_X64_REGISTER_MSR_MTRR_PHYS_BASE0 == 0x00080010 &&
              HV_X64_REGISTER_MSR_MTRR_PHYS_MASK0 == 0x00080040 &&
              HV_X64_REGISTER_MSR_MTRR_FIX4KC0000 == 0x00080073);

}  // namespace virt::mshv
