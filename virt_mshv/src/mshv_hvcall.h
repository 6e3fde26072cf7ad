// Hypercalls through MSHV_ROOT_HVCALL: register batches and virtual interrupt assertion.
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

// One MSHV_ROOT_HVCALL of `code` (reps repetitions, 0 for a simple call). On failure the error's
// operation is `name`; it carries the hypervisor status (NativeDomain::kHvStatus) when the
// hypervisor returned one, else the ioctl's errno, and names MSHV_ROOT_HVCALL in the detail.
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

// A register assoc with a 64-bit value.
hv_register_assoc Assoc(uint32_t name, uint64_t value);

}  // namespace virt::mshv
