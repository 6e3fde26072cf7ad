// MSHV_ROOT_HVCALL buffers: registers, interrupts, intercepts, CPUID values, partition
// properties, status mapping.
#include "mshv_hvcall.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace virt::mshv {
namespace {

std::vector<uint8_t> RegisterHeader(uint32_t vp_index, size_t extra) {
  std::vector<uint8_t> in(sizeof(hv_input_get_vp_registers) + extra, 0);
  hv_input_get_vp_registers header{};
  header.vpindex = vp_index;  // partitionid is filled in by the kernel; VTL 0
  std::memcpy(in.data(), &header, sizeof header);
  return in;
}

}  // namespace

Status RootHvcall(MshvIoctl& ioctl, int fd, uint16_t code, const char* name, uint16_t reps,
                  std::span<const uint8_t> input, std::span<uint8_t> output) {
  if (input.size() > MSHV_HVCALL_MAX_SIZE || output.size() > MSHV_HVCALL_MAX_SIZE) {
    return Error::Make(ErrorCode::kInvalidArgument, name, "hypercall buffers exceed 4096 bytes");
  }
  mshv_root_hvcall call{};
  Status done = Ok();
  for (int deposits = 0;; ++deposits) {
    call = mshv_root_hvcall{};  // status must be 0 going in; reps comes back as completed reps
    call.code = code;
    call.reps = reps;
    call.in_sz = static_cast<uint16_t>(input.size());
    call.out_sz = static_cast<uint16_t>(output.size());
    call.in_ptr = reinterpret_cast<uintptr_t>(input.data());
    call.out_ptr = output.empty() ? 0 : reinterpret_cast<uintptr_t>(output.data());
    done = ioctl.RootHvcall(fd, &call);
    const bool deposited = !done && done.error().domain == NativeDomain::kErrno &&
                           done.error().native_code == EAGAIN &&
                           call.status == HV_STATUS_INSUFFICIENT_MEMORY;
    if (!deposited || deposits == kMaxMemoryDeposits) break;
  }
  if (done && call.status == HV_STATUS_SUCCESS) {
    if (call.reps == reps) return Ok();
    return Error::Make(ErrorCode::kNative, name,
                       "MSHV_ROOT_HVCALL completed " + std::to_string(call.reps) + " of " +
                           std::to_string(reps) + " reps");
  }
  std::string errno_text = "MSHV_ROOT_HVCALL";
  if (!done) errno_text += ": " + done.error().Message();
  if (call.status != HV_STATUS_SUCCESS) {
    return Error{ErrorCode::kNative, name, call.status, NativeDomain::kHvStatus,
                 std::move(errno_text)};
  }
  Error e = done.error();
  e.operation = name;
  e.detail = "MSHV_ROOT_HVCALL" + (e.detail.empty() ? std::string() : ": " + e.detail);
  return e;
}

Status GetVpRegisters(MshvIoctl& ioctl, int vp_fd, uint32_t vp_index,
                      std::span<const uint32_t> names, std::span<hv_register_value> values) {
  if (names.size() != values.size() || names.empty() || names.size() > kMaxRegistersPerCall) {
    return Error::Make(ErrorCode::kInvalidArgument, "HVCALL_GET_VP_REGISTERS",
                       std::to_string(names.size()) + " names for " +
                           std::to_string(values.size()) + " values");
  }
  std::vector<uint8_t> in = RegisterHeader(vp_index, names.size() * sizeof(uint32_t));
  std::memcpy(in.data() + sizeof(hv_input_get_vp_registers), names.data(), names.size_bytes());
  std::vector<uint8_t> out(values.size_bytes(), 0);
  if (Status s = RootHvcall(ioctl, vp_fd, HVCALL_GET_VP_REGISTERS, "HVCALL_GET_VP_REGISTERS",
                            static_cast<uint16_t>(names.size()), in, out);
      !s) {
    return s;
  }
  std::memcpy(values.data(), out.data(), out.size());
  return Ok();
}

Status SetVpRegisters(MshvIoctl& ioctl, int vp_fd, uint32_t vp_index,
                      std::span<const hv_register_assoc> assocs) {
  if (assocs.empty() || assocs.size() > kMaxRegistersPerCall) {
    return Error::Make(ErrorCode::kInvalidArgument, "HVCALL_SET_VP_REGISTERS",
                       std::to_string(assocs.size()) + " registers in one call");
  }
  std::vector<uint8_t> in = RegisterHeader(vp_index, assocs.size_bytes());
  std::memcpy(in.data() + sizeof(hv_input_set_vp_registers), assocs.data(), assocs.size_bytes());
  return RootHvcall(ioctl, vp_fd, HVCALL_SET_VP_REGISTERS, "HVCALL_SET_VP_REGISTERS",
                    static_cast<uint16_t>(assocs.size()), in, {});
}

Status AssertVirtualInterrupt(MshvIoctl& ioctl, int partition_fd, const DecodedMsi& msi) {
  hv_input_assert_virtual_interrupt in{};
  // DeliveryMode uses the x86 encoding, which hv_interrupt_type mirrors value for value.
  in.control = static_cast<uint64_t>(msi.delivery_mode);
  if (msi.trigger_mode == TriggerMode::kLevel) in.control |= HV_INTERRUPT_CONTROL_LEVEL_TRIGGERED;
  if (msi.destination_mode == DestinationMode::kLogical) {
    in.control |= HV_INTERRUPT_CONTROL_LOGICAL_DEST_MODE;
  }
  in.dest_addr = msi.destination;
  in.vector = msi.vector;
  in.target_vtl = 0;
  uint8_t bytes[sizeof in];
  std::memcpy(bytes, &in, sizeof in);
  return RootHvcall(ioctl, partition_fd, HVCALL_ASSERT_VIRTUAL_INTERRUPT,
                    "HVCALL_ASSERT_VIRTUAL_INTERRUPT", 0, bytes, {});
}

Status InstallCpuidIntercept(MshvIoctl& ioctl, int fd, uint32_t leaf) {
  hv_input_install_intercept in{};
  in.access_type = HV_INTERCEPT_ACCESS_MASK_EXECUTE;
  in.intercept_type = HV_INTERCEPT_TYPE_X64_CPUID;
  in.intercept_parameter = leaf;  // hv_intercept_parameters.cpuid_index; upper bits zero
  uint8_t bytes[sizeof in];
  std::memcpy(bytes, &in, sizeof in);
  return RootHvcall(ioctl, fd, HVCALL_INSTALL_INTERCEPT, "HVCALL_INSTALL_INTERCEPT", 0, bytes, {});
}

Status GetVpCpuidValues(MshvIoctl& ioctl, int fd, uint32_t vp_index,
                        std::span<const hv_cpuid_leaf_info> leaves,
                        std::span<hv_output_get_vp_cpuid_values> values) {
  if (leaves.size() != values.size() || leaves.empty() ||
      leaves.size() > kMaxCpuidLeavesPerCall) {
    return Error::Make(ErrorCode::kInvalidArgument, "HVCALL_GET_VP_CPUID_VALUES",
                       std::to_string(leaves.size()) + " leaves for " +
                           std::to_string(values.size()) + " values");
  }
  hv_input_get_vp_cpuid_values header{};
  header.vp_index = vp_index;
  header.flags = HV_GET_VP_CPUID_VALUES_USE_VP_XFEM_XSS |
                 HV_GET_VP_CPUID_VALUES_APPLY_REGISTERED_VALUES;
  std::vector<uint8_t> in(sizeof header + leaves.size_bytes(), 0);
  std::memcpy(in.data(), &header, sizeof header);
  std::memcpy(in.data() + sizeof header, leaves.data(), leaves.size_bytes());
  std::vector<uint8_t> out(values.size_bytes(), 0);
  if (Status s = RootHvcall(ioctl, fd, HVCALL_GET_VP_CPUID_VALUES, "HVCALL_GET_VP_CPUID_VALUES",
                            static_cast<uint16_t>(leaves.size()), in, out);
      !s) {
    return s;
  }
  std::memcpy(values.data(), out.data(), out.size());
  return Ok();
}

Result<uint64_t> GetPartitionProperty(MshvIoctl& ioctl, int fd, uint32_t code) {
  hv_input_get_partition_property in{};
  in.property_code = code;
  uint8_t bytes[sizeof in];
  std::memcpy(bytes, &in, sizeof in);
  uint8_t out[sizeof(hv_output_get_partition_property)] = {};
  if (Status s = RootHvcall(ioctl, fd, HVCALL_GET_PARTITION_PROPERTY,
                            "HVCALL_GET_PARTITION_PROPERTY", 0, bytes, out);
      !s) {
    return s.error();
  }
  uint64_t value = 0;
  std::memcpy(&value, out, sizeof value);
  return value;
}

Status SetPartitionProperty(MshvIoctl& ioctl, int partition_fd, uint32_t code, uint64_t value) {
  hv_input_set_partition_property in{};
  in.property_code = code;
  in.property_value = value;
  uint8_t bytes[sizeof in];
  std::memcpy(bytes, &in, sizeof in);
  return RootHvcall(ioctl, partition_fd, HVCALL_SET_PARTITION_PROPERTY,
                    "HVCALL_SET_PARTITION_PROPERTY", 0, bytes, {});
}

hv_register_assoc Assoc(uint32_t name, uint64_t value) {
  hv_register_assoc a{};
  a.name = name;
  a.value.low = value;
  return a;
}

static_assert(static_cast<uint32_t>(DeliveryMode::kFixed) == HV_X64_INTERRUPT_TYPE_FIXED);
static_assert(static_cast<uint32_t>(DeliveryMode::kLowestPriority) ==
              HV_X64_INTERRUPT_TYPE_LOWESTPRIORITY);
static_assert(static_cast<uint32_t>(DeliveryMode::kSmi) == HV_X64_INTERRUPT_TYPE_SMI);
static_assert(static_cast<uint32_t>(DeliveryMode::kNmi) == HV_X64_INTERRUPT_TYPE_NMI);
static_assert(static_cast<uint32_t>(DeliveryMode::kInit) == HV_X64_INTERRUPT_TYPE_INIT);
static_assert(static_cast<uint32_t>(DeliveryMode::kExtInt) == HV_X64_INTERRUPT_TYPE_EXTINT);

}  // namespace virt::mshv
