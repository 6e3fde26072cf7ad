// DecodeMessage: bounds-checked parsing of hv_message intercept payloads.
#include "mshv_message.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace virt::mshv {
namespace {

constexpr const char* kOp = "MSHV_RUN_VP";

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Error Malformed(uint32_t type, const std::string& what) {
  return Error::Make(ErrorCode::kInvalidArgument, kOp,
                     "malformed message " + Hex(type) + ": " + what);
}

// Copies a payload struct out of the message once payload_size proves it is all there.
template <typename T>
Result<T> Payload(const hv_message& msg) {
  if (msg.header.payload_size < sizeof(T)) {
    return Malformed(msg.header.message_type,
                     "payload_size " + std::to_string(msg.header.payload_size) + " < " +
                         std::to_string(sizeof(T)));
  }
  T out;
  std::memcpy(&out, msg.payload, sizeof(T));
  return out;
}

Result<Message> DecodeIoPort(const hv_message& msg) {
  auto p = Payload<hv_x64_io_port_intercept_message>(msg);
  if (!p) return p.error();
  IoPortIntercept io;
  io.port = p->port_number;
  io.size = p->access_info & HV_X64_IO_PORT_ACCESS_SIZE_MASK;
  io.string_op = (p->access_info & HV_X64_IO_PORT_STRING_OP) != 0;
  io.rep = (p->access_info & HV_X64_IO_PORT_REP_PREFIX) != 0;
  io.rax = p->rax;
  io.rip = p->header.rip;
  io.instruction_length = p->header.instruction_length_cr8 & 0x0F;
  io.instruction_byte_count = p->instruction_byte_count;
  if (io.size != 1 && io.size != 2 && io.size != 4) {
    return Malformed(msg.header.message_type, "access size " + std::to_string(io.size));
  }
  if (p->header.intercept_access_type > HV_INTERCEPT_ACCESS_WRITE) {
    return Malformed(msg.header.message_type,
                     "access type " + std::to_string(p->header.intercept_access_type));
  }
  io.is_write = p->header.intercept_access_type == HV_INTERCEPT_ACCESS_WRITE;
  if (io.instruction_length == 0) return Malformed(msg.header.message_type, "instruction length 0");
  if (io.instruction_byte_count > io.instruction_bytes.size()) {
    return Malformed(msg.header.message_type,
                     "instruction_byte_count " + std::to_string(io.instruction_byte_count));
  }
  std::memcpy(io.instruction_bytes.data(), p->instruction_bytes, io.instruction_byte_count);
  return Message{io};
}

Result<Message> DecodeMemory(const hv_message& msg) {
  auto p = Payload<hv_x64_memory_intercept_message>(msg);
  if (!p) return p.error();
  const uint8_t access = p->header.intercept_access_type;
  if (access > HV_INTERCEPT_ACCESS_EXECUTE) {
    return Malformed(msg.header.message_type, "access type " + std::to_string(access));
  }
  if (p->instruction_byte_count > sizeof p->instruction_bytes) {
    return Malformed(msg.header.message_type,
                     "instruction_byte_count " + std::to_string(p->instruction_byte_count));
  }
  if (access == HV_INTERCEPT_ACCESS_EXECUTE) {
    // The guest jumped into a hole: nothing a device model can answer.
    InternalErrorExit e;
    e.suberror = msg.header.message_type;
    e.data = {p->guest_physical_address, p->header.rip, access, 0};
    e.ndata = 3;
    return Message{VcpuExit{e}};
  }
  MemoryIntercept m;
  m.gpa = p->guest_physical_address;
  m.is_write = access == HV_INTERCEPT_ACCESS_WRITE;
  m.rip = p->header.rip;
  m.mode = ModeOf(p->header.execution_state, p->header.cs_segment.attributes);
  m.instruction_byte_count = p->instruction_byte_count;
  std::memcpy(m.instruction_bytes.data(), p->instruction_bytes, m.instruction_byte_count);
  return Message{m};
}

Result<Message> DecodeCpuid(const hv_message& msg) {
  auto p = Payload<hv_x64_cpuid_intercept_message>(msg);
  if (!p) return p.error();
  CpuidIntercept c;
  c.function = static_cast<uint32_t>(p->rax);
  c.index = static_cast<uint32_t>(p->rcx);
  c.default_rax = p->default_result_rax;
  c.default_rbx = p->default_result_rbx;
  c.default_rcx = p->default_result_rcx;
  c.default_rdx = p->default_result_rdx;
  c.rip = p->header.rip;
  c.instruction_length = p->header.instruction_length_cr8 & 0x0F;
  if (c.instruction_length == 0) return Malformed(msg.header.message_type, "instruction length 0");
  return Message{c};
}

}  // namespace

X86Mode ModeOf(uint16_t execution_state, uint16_t cs_attributes) {
  if ((execution_state & HV_X64_EXECUTION_STATE_CR0_PE) == 0) return X86Mode::kReal16;
  if ((execution_state & HV_X64_EXECUTION_STATE_EFER_LMA) != 0 &&
      (cs_attributes & HV_X64_SEGMENT_ATTRIBUTE_LONG) != 0) {
    return X86Mode::kLong64;
  }
  return (cs_attributes & HV_X64_SEGMENT_ATTRIBUTE_DEFAULT) ? X86Mode::kProtected32
                                                             : X86Mode::kReal16;
}

Result<Message> DecodeMessage(const mshv_run_vp& run) {
  hv_message msg;
  static_assert(sizeof msg == sizeof run.msg_buf);
  std::memcpy(&msg, run.msg_buf, sizeof msg);
  const uint32_t type = msg.header.message_type;
  if (msg.header.payload_size > HV_MESSAGE_PAYLOAD_BYTE_COUNT) {
    return Malformed(type, "payload_size " + std::to_string(msg.header.payload_size) + " > 240");
  }
  switch (type) {
    case HVMSG_NONE:
    case HVMSG_TIMER_EXPIRED:
      return Message{RunAgain{}};
    case HVMSG_X64_IO_PORT_INTERCEPT:
      return DecodeIoPort(msg);
    case HVMSG_UNMAPPED_GPA:
    case HVMSG_GPA_INTERCEPT:
      return DecodeMemory(msg);
    case HVMSG_X64_CPUID_INTERCEPT:
      return DecodeCpuid(msg);
    case HVMSG_X64_HALT:
      return Message{VcpuExit{HaltExit{}}};
    case HVMSG_UNRECOVERABLE_EXCEPTION:
      return Message{VcpuExit{ShutdownExit{}}};
    case HVMSG_INVALID_VP_REGISTER_VALUE:
    case HVMSG_UNSUPPORTED_FEATURE: {
      InternalErrorExit e;
      e.suberror = type;
      return Message{VcpuExit{e}};
    }
    default:
      return Message{VcpuExit{UnknownExit{type}}};
  }
}

}  // namespace virt::mshv
