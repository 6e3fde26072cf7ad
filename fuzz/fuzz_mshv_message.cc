// libFuzzer target: mshv::DecodeMessage on arbitrary 256-byte MSHV_RUN_VP message buffers.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "mshv_message.h"
#include "fuzz_check.h"

namespace {

using namespace virt;
using namespace virt::mshv;

uint64_t Le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Every field of a decoded message as numbers, so two decodes compare in one line.
std::vector<uint64_t> Fingerprint(const Result<Message>& r) {
  if (!r) return {~uint64_t{0}, static_cast<uint64_t>(r.error().code)};
  std::vector<uint64_t> f{r->index()};
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, IoPortIntercept>) {
          f.insert(f.end(), {m.port, m.size, m.is_write, m.string_op, m.rep, m.rax, m.rip,
                             m.instruction_length, m.instruction_byte_count});
          f.insert(f.end(), m.instruction_bytes.begin(), m.instruction_bytes.end());
        } else if constexpr (std::is_same_v<T, MemoryIntercept>) {
          f.insert(f.end(), {m.gpa, m.is_write, m.rip, static_cast<uint64_t>(m.mode),
                             m.instruction_byte_count});
          f.insert(f.end(), m.instruction_bytes.begin(), m.instruction_bytes.end());
        } else if constexpr (std::is_same_v<T, CpuidIntercept>) {
          f.insert(f.end(), {m.function, m.index, m.default_rax, m.default_rbx, m.default_rcx,
                             m.default_rdx, m.rip, m.instruction_length});
        } else if constexpr (std::is_same_v<T, VcpuExit>) {
          f.push_back(m.index());
          if (auto* e = std::get_if<InternalErrorExit>(&m)) {
            f.insert(f.end(), {e->suberror, e->ndata});
            f.insert(f.end(), e->data.begin(), e->data.end());
          } else if (auto* u = std::get_if<UnknownExit>(&m)) {
            f.push_back(u->reason);
          }
        }
      },
      *r);
  return f;
}

// Decodes `run` from an exactly-sized heap copy (ASan sees any read outside the buffer).
Result<Message> Decode(const mshv_run_vp& run) {
  auto copy = std::make_unique<mshv_run_vp>(run);
  return DecodeMessage(*copy);
}

}  // namespace

// Input: the message buffer (missing bytes zero); the bytes past 256 fill the part of a second
// buffer that lies past payload_size.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mshv_run_vp run{};
  std::memcpy(run.msg_buf, data, size < sizeof run.msg_buf ? size : sizeof run.msg_buf);
  const uint8_t* m = run.msg_buf;
  const uint32_t type = static_cast<uint32_t>(Le(m, 4));
  const uint8_t payload_size = m[4];
  const uint8_t* p = m + 16;  // payload; intercept header first

  auto decoded = Decode(run);
  if (!decoded) {
    // Garbage is an error naming the ioctl and the message type.
    FUZZ_CHECK(decoded.error().code == ErrorCode::kInvalidArgument);
    FUZZ_CHECK(std::string(decoded.error().operation) == "MSHV_RUN_VP");
    FUZZ_CHECK(decoded.error().detail.find("malformed message") != std::string::npos);
  } else {
    FUZZ_CHECK(payload_size <= HV_MESSAGE_PAYLOAD_BYTE_COUNT);
    if (auto* io = std::get_if<IoPortIntercept>(&*decoded)) {
      FUZZ_CHECK(type == HVMSG_X64_IO_PORT_INTERCEPT);
      FUZZ_CHECK(payload_size >= sizeof(hv_x64_io_port_intercept_message));
      FUZZ_CHECK(io->size == 1 || io->size == 2 || io->size == 4);
      FUZZ_CHECK(io->instruction_length >= 1 && io->instruction_length <= 15);
      FUZZ_CHECK(io->instruction_byte_count <= 16);
      FUZZ_CHECK(io->port == Le(p + 40, 2) && io->rax == Le(p + 48, 8) && io->rip == Le(p + 24, 8));
      FUZZ_CHECK(io->is_write == (p[5] == HV_INTERCEPT_ACCESS_WRITE) && p[5] <= 1);
      FUZZ_CHECK(std::memcmp(io->instruction_bytes.data(), p + 56, io->instruction_byte_count) == 0);
      for (size_t i = io->instruction_byte_count; i < 16; ++i) FUZZ_CHECK(io->instruction_bytes[i] == 0);
    } else if (auto* mem = std::get_if<MemoryIntercept>(&*decoded)) {
      FUZZ_CHECK(type == HVMSG_UNMAPPED_GPA || type == HVMSG_GPA_INTERCEPT);
      FUZZ_CHECK(payload_size >= sizeof(hv_x64_memory_intercept_message));
      FUZZ_CHECK(mem->instruction_byte_count <= 16);
      FUZZ_CHECK(mem->gpa == Le(p + 56, 8) && mem->rip == Le(p + 24, 8));
      FUZZ_CHECK(p[5] <= 1 && mem->is_write == (p[5] == HV_INTERCEPT_ACCESS_WRITE));
      FUZZ_CHECK(mem->mode == ModeOf(static_cast<uint16_t>(Le(p + 6, 2)),
                                     static_cast<uint16_t>(Le(p + 22, 2))));
      FUZZ_CHECK(std::memcmp(mem->instruction_bytes.data(), p + 64, mem->instruction_byte_count) == 0);
    } else if (auto* c = std::get_if<CpuidIntercept>(&*decoded)) {
      FUZZ_CHECK(type == HVMSG_X64_CPUID_INTERCEPT);
      FUZZ_CHECK(payload_size >= sizeof(hv_x64_cpuid_intercept_message));
      FUZZ_CHECK(c->instruction_length >= 1 && c->instruction_length <= 15);
      FUZZ_CHECK(c->function == static_cast<uint32_t>(Le(p + 40, 8)));
      FUZZ_CHECK(c->index == static_cast<uint32_t>(Le(p + 48, 8)));
    } else if (std::holds_alternative<RunAgain>(*decoded)) {
      FUZZ_CHECK(type == HVMSG_NONE || type == HVMSG_TIMER_EXPIRED);
    } else {
      const auto& exit = std::get<VcpuExit>(*decoded);
      if (std::holds_alternative<HaltExit>(exit)) FUZZ_CHECK(type == HVMSG_X64_HALT);
      if (std::holds_alternative<ShutdownExit>(exit)) FUZZ_CHECK(type == HVMSG_UNRECOVERABLE_EXCEPTION);
      if (auto* e = std::get_if<InternalErrorExit>(&exit)) FUZZ_CHECK(e->suberror == type);
      if (auto* u = std::get_if<UnknownExit>(&exit)) FUZZ_CHECK(u->reason == type);
      FUZZ_CHECK(!std::holds_alternative<IoExit>(exit) && !std::holds_alternative<MmioExit>(exit));
    }
  }

  // Only bytes within payload_size count: changing what lies past it changes nothing.
  if (payload_size <= HV_MESSAGE_PAYLOAD_BYTE_COUNT) {
    mshv_run_vp other = run;
    const size_t end = 16 + size_t{payload_size};
    for (size_t i = end; i < sizeof other.msg_buf; ++i) {
      const size_t from = sizeof run.msg_buf + (i - end);
      other.msg_buf[i] = from < size ? data[from] : static_cast<uint8_t>(~run.msg_buf[i]);
    }
    FUZZ_CHECK(Fingerprint(Decode(other)) == Fingerprint(decoded));
  }
  return 0;
}
