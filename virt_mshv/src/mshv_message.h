// DecodeMessage: the hv_message MSHV_RUN_VP returns, checked and parsed into intercept values.
#pragma once

#include <array>
#include <cstdint>
#include <variant>

#include "virt/mshv/mshv_abi.h"
#include "virt/result.h"
#include "virt/vcpu_exit.h"
#include "virt/x86_mmio_decoder.h"

namespace virt::mshv {

// HVMSG_X64_IO_PORT_INTERCEPT.
struct IoPortIntercept {
  uint16_t port = 0;
  uint8_t size = 0;  // 1, 2 or 4
  bool is_write = false;
  bool string_op = false;
  bool rep = false;
  uint64_t rax = 0;
  uint64_t rip = 0;
  uint8_t instruction_length = 0;  // 1..15
  std::array<uint8_t, 16> instruction_bytes{};
  uint8_t instruction_byte_count = 0;
};

// HVMSG_UNMAPPED_GPA / HVMSG_GPA_INTERCEPT with a read or write access.
struct MemoryIntercept {
  uint64_t gpa = 0;
  bool is_write = false;
  uint64_t rip = 0;
  X86Mode mode = X86Mode::kLong64;
  std::array<uint8_t, 16> instruction_bytes{};
  uint8_t instruction_byte_count = 0;  // 0..16
};

// HVMSG_X64_CPUID_INTERCEPT (only for leaves with an installed CPUID intercept).
struct CpuidIntercept {
  uint32_t function = 0;  // the guest's EAX
  uint32_t index = 0;     // the guest's ECX
  uint64_t default_rax = 0, default_rbx = 0, default_rcx = 0, default_rdx = 0;
  uint64_t rip = 0;
  uint8_t instruction_length = 0;  // 1..15
  bool operator==(const CpuidIntercept&) const = default;
};

// Nothing for the VMM (HVMSG_NONE, HVMSG_TIMER_EXPIRED): run again.
struct RunAgain {};

// A message is either an intercept the vCPU completes, a final VcpuExit, or RunAgain.
using Message = std::variant<IoPortIntercept, MemoryIntercept, CpuidIntercept, VcpuExit, RunAgain>;

// Parses run.msg_buf. Only bytes inside the 256-byte buffer are read, and only as far as the
// header's payload_size allows: a payload_size above 240 or below what the message type needs,
// an access size other than 1/2/4, an instruction length of 0 or above 15, an instruction byte
// count above 16 or an unknown access type fail with kInvalidArgument naming MSHV_RUN_VP and the
// message type (a CPUID intercept also needs its 104-byte payload and a non-zero length). Halt -> HaltExit, unrecoverable exception -> ShutdownExit, invalid register
// value / unsupported feature / instruction fetch from an unmapped GPA -> InternalErrorExit
// (suberror = message type), other types -> UnknownExit{message type}.
Result<Message> DecodeMessage(const mshv_run_vp& run);

// The processor mode from an intercept header's execution state and CS attributes.
X86Mode ModeOf(uint16_t execution_state, uint16_t cs_attributes);

}  // namespace virt::mshv
