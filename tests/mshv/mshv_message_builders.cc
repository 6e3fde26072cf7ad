// Byte-exact hv_message builders and routing-table parsing for the MSHV suites: every field is
// written at the offset the reference gives, not through the backend's structs.
#include <cstring>

#include "mshv_fake.h"

namespace virt::mshv::test {

std::vector<mshv_user_irq_entry> TableEntries(const mshv_user_irq_table& table) {
  std::vector<mshv_user_irq_entry> out(table.nr);
  const auto* bytes = reinterpret_cast<const uint8_t*>(&table) + 8;
  if (table.nr != 0) std::memcpy(out.data(), bytes, table.nr * sizeof(mshv_user_irq_entry));
  return out;
}

void PutLe(uint8_t* buf, size_t offset, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) buf[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

std::vector<uint8_t> SetRegistersInput(uint32_t vp_index,
                                       std::initializer_list<std::pair<uint32_t, uint64_t>> regs) {
  std::vector<uint8_t> in(16 + 32 * regs.size(), 0);
  PutLe(in.data(), 8, vp_index, 4);
  size_t i = 0;
  for (auto [name, value] : regs) {
    PutLe(in.data(), 16 + 32 * i, name, 4);
    PutLe(in.data(), 16 + 32 * i + 16, value, 8);
    ++i;
  }
  return in;
}

namespace {

// Message header (16 bytes) + intercept header at payload offset 0 (message offset 16).
void PutHeaders(uint8_t* m, uint32_t type, uint8_t payload_size, const InterceptHeader& h) {
  PutLe(m, 0, type, 4);
  PutLe(m, 4, payload_size, 1);
  uint8_t* p = m + 16;
  PutLe(p, 0, h.vp_index, 4);
  PutLe(p, 4, h.instruction_length & 0x0F, 1);
  PutLe(p, 5, h.access_type, 1);
  PutLe(p, 6, h.execution_state, 2);
  PutLe(p, 8 + 14, h.cs_attributes, 2);  // CS segment at 8: base, limit, selector, attributes
  PutLe(p, 24, h.rip, 8);
  PutLe(p, 32, h.rflags, 8);
}

}  // namespace

mshv_run_vp IoPortMessage(const InterceptHeader& h, uint16_t port, uint8_t access_info,
                          uint64_t rax, uint8_t payload_size) {
  mshv_run_vp run{};
  PutHeaders(run.msg_buf, HVMSG_X64_IO_PORT_INTERCEPT, payload_size, h);
  uint8_t* p = run.msg_buf + 16;
  PutLe(p, 40, port, 2);
  PutLe(p, 42, access_info, 1);
  PutLe(p, 48, rax, 8);
  return run;
}

mshv_run_vp MemoryMessage(uint32_t type, const InterceptHeader& h, uint64_t gpa,
                          const std::vector<uint8_t>& instruction, uint8_t payload_size) {
  mshv_run_vp run{};
  PutHeaders(run.msg_buf, type, payload_size, h);
  uint8_t* p = run.msg_buf + 16;
  PutLe(p, 44, instruction.size(), 1);
  PutLe(p, 45, 0x3, 1);  // gva_valid | gva_gpa_valid
  PutLe(p, 48, 0xFFFF800000000000ull | gpa, 8);
  PutLe(p, 56, gpa, 8);
  for (size_t i = 0; i < instruction.size() && i < 16; ++i) p[64 + i] = instruction[i];
  return run;
}

mshv_run_vp PlainMessage(uint32_t type, uint8_t payload_size) {
  mshv_run_vp run{};
  PutLe(run.msg_buf, 0, type, 4);
  PutLe(run.msg_buf, 4, payload_size, 1);
  return run;
}

mshv_run_vp CpuidMessage(const InterceptHeader& h, uint64_t rax, uint64_t rcx,
                         const CpuidDefault& result, uint8_t payload_size) {
  mshv_run_vp run{};
  PutHeaders(run.msg_buf, HVMSG_X64_CPUID_INTERCEPT, payload_size, h);
  uint8_t* p = run.msg_buf + 16;
  PutLe(p, 40, rax, 8);
  PutLe(p, 48, rcx, 8);
  PutLe(p, 56, 0x5555, 8);  // the guest's RDX and RBX: not inputs of CPUID
  PutLe(p, 64, 0x6666, 8);
  PutLe(p, 72, result.rax, 8);
  PutLe(p, 80, result.rcx, 8);
  PutLe(p, 88, result.rdx, 8);
  PutLe(p, 96, result.rbx, 8);
  return run;
}

}  // namespace virt::mshv::test
