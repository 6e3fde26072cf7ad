// Hypercalls through MSHV_ROOT_HVCALL: registers, interrupts, intercepts, CPUID values and
// partition properties.
#pragma once

#include <cstdint>
#include <span>

#include "virt/msi_message.h"
#include "virt/mshv/mshv_ioctl.h"
#include "virt/result.h"

namespace virt::mshv {

// Most registers one HVCALL_GET_VP_REGISTERS / HVCALL_SET_VP_REGISTERS carries: the input
// (16-byte header + 32 bytes per assoc) and output (16 bytes per value) fit MSHV_HVCALL_MAX_SIZE.
inline constexpr size_t kMaxRegistersPerCall = 127;

// Most leaves one HVCALL_GET_VP_CPUID_VALUES carries: the input (24-byte header + 24 bytes per
// leaf) and output (16 bytes per leaf) fit MSHV_HVCALL_MAX_SIZE.
inline constexpr size_t kMaxCpuidLeavesPerCall = 128;

// Times RootHvcall calls again after the kernel deposited memory for the hypervisor.
inline constexpr int kMaxMemoryDeposits = 16;

// One MSHV_ROOT_HVCALL of `code` (reps repetitions, 0 for a simple call). EAGAIN with
// HV_STATUS_INSUFFICIENT_MEMORY means the kernel deposited a page for the hypervisor: the call
// is made again (up to kMaxMemoryDeposits times). A rep call must complete all its reps. On
// failure the error's operation is `name`; it carries the hypervisor status
// (NativeDomain::kHvStatus) when the hypervisor returned one, else the ioctl's errno, and names
// MSHV_ROOT_HVCALL in the detail.
Status RootHvcall(MshvIoctl& ioctl, int fd, uint16_t code, const char* name, uint16_t reps,
                  std::span<const uint8_t> input, std::span<uint8_t> output);

// HVCALL_GET_VP_REGISTERS on the vp fd: values[i] receives register names[i]; reps = count.
// kInvalidArgument when the spans differ in size or exceed kMaxRegistersPerCall.
Status GetVpRegisters(MshvIoctl& ioctl, int vp_fd, uint32_t vp_index,
                      std::span<const uint32_t> names, std::span<hv_register_value> values);

// HVCALL_SET_VP_REGISTERS on the vp fd with every assoc in one call; reps = count.
Status SetVpRegisters(MshvIoctl& ioctl, int vp_fd, uint32_t vp_index,
                      std::span<const hv_register_assoc> assocs);

// HVCALL_ASSERT_VIRTUAL_INTERRUPT on the partition fd for a decoded x86 MSI: interrupt type =
// delivery mode, level/logical bits, destination APIC ID and vector; VTL 0.
Status AssertVirtualInterrupt(MshvIoctl& ioctl, int partition_fd, const DecodedMsi& msi);

// HVCALL_INSTALL_INTERCEPT {access HV_INTERCEPT_ACCESS_MASK_EXECUTE, HV_INTERCEPT_TYPE_X64_CPUID,
// parameter = leaf}: from now on CPUID(leaf, any sub-leaf) on every VP of the partition stops
// with HVMSG_X64_CPUID_INTERCEPT. Partition-wide; `fd` may be the partition or a vp fd.
Status InstallCpuidIntercept(MshvIoctl& ioctl, int fd, uint32_t leaf);

// HVCALL_GET_VP_CPUID_VALUES for VP `vp_index` (which must exist), one rep per leaf, flags
// USE_VP_XFEM_XSS | APPLY_REGISTERED_VALUES: what CPUID(eax, ecx) returns on that VP, computed by
// the hypervisor. kInvalidArgument when the spans differ in size, are empty or exceed
// kMaxCpuidLeavesPerCall.
Status GetVpCpuidValues(MshvIoctl& ioctl, int fd, uint32_t vp_index,
                        std::span<const hv_cpuid_leaf_info> leaves,
                        std::span<hv_output_get_vp_cpuid_values> values);

// HVCALL_GET_PARTITION_PROPERTY {code} on a partition or vp fd -> the property's value.
Result<uint64_t> GetPartitionProperty(MshvIoctl& ioctl, int fd, uint32_t code);

// HVCALL_SET_PARTITION_PROPERTY {code, value} on the partition fd (the kernel runs this
// asynchronous hypercall only from a partition fd).
Status SetPartitionProperty(MshvIoctl& ioctl, int partition_fd, uint32_t code, uint64_t value);

// A register assoc with a 64-bit value.
hv_register_assoc Assoc(uint32_t name, uint64_t value);

}  // namespace virt::mshv
