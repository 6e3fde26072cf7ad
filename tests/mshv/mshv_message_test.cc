// DecodeMessage from byte-exact hv_message buffers: every handled type, truncated and garbage.
#include "mshv_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "mshv_fake.h"

namespace virt::mshv::test {
namespace {

using ::testing::HasSubstr;

InterceptHeader Header(uint8_t access, uint8_t length = 0) {
  InterceptHeader h;
  h.access_type = access;
  h.instruction_length = length;
  h.rip = 0xFFF0;
  return h;
}

TEST(DecodeMessage, IoPortOutWithRaxAndLength) {
  mshv_run_vp run = IoPortMessage(Header(1, 2), 0x3F8, /*access_info=*/1, 0x1122334455667741);
  auto m = DecodeMessage(run);
  ASSERT_TRUE(m.has_value()) << m.error().Message();
  const auto& io = std::get<IoPortIntercept>(*m);
  EXPECT_EQ(io.port, 0x3F8);
  EXPECT_EQ(io.size, 1);
  EXPECT_TRUE(io.is_write);
  EXPECT_FALSE(io.string_op);
  EXPECT_FALSE(io.rep);
  EXPECT_EQ(io.rax, 0x1122334455667741u);
  EXPECT_EQ(io.rip, 0xFFF0u);
  EXPECT_EQ(io.instruction_length, 2);
}

TEST(DecodeMessage, IoPortAccessInfoBits) {
  // size 4, string op, rep prefix.
  auto m = DecodeMessage(IoPortMessage(Header(0, 2), 0x60, 4 | 0x8 | 0x10, 0));
  ASSERT_TRUE(m.has_value());
  const auto& io = std::get<IoPortIntercept>(*m);
  EXPECT_EQ(io.size, 4);
  EXPECT_FALSE(io.is_write);
  EXPECT_TRUE(io.string_op);
  EXPECT_TRUE(io.rep);
}

TEST(DecodeMessage, MemoryInterceptBothTypes) {
  for (uint32_t type : {HVMSG_UNMAPPED_GPA, HVMSG_GPA_INTERCEPT}) {
    auto m = DecodeMessage(MemoryMessage(type, Header(1), 0xFEE00300, {0x89, 0x08}));
    ASSERT_TRUE(m.has_value()) << m.error().Message();
    const auto& mem = std::get<MemoryIntercept>(*m);
    EXPECT_EQ(mem.gpa, 0xFEE00300u);
    EXPECT_TRUE(mem.is_write);
    EXPECT_EQ(mem.rip, 0xFFF0u);
    EXPECT_EQ(mem.mode, X86Mode::kLong64);
    EXPECT_EQ(mem.instruction_byte_count, 2);
    EXPECT_EQ(mem.instruction_bytes[0], 0x89);
    EXPECT_EQ(mem.instruction_bytes[1], 0x08);
  }
}

TEST(DecodeMessage, ModeFromExecutionStateAndCs) {
  EXPECT_EQ(ModeOf(0, 0), X86Mode::kReal16);
  EXPECT_EQ(ModeOf(1u << 2, 1u << 14), X86Mode::kProtected32);
  EXPECT_EQ(ModeOf(1u << 2, 0), X86Mode::kReal16);
  EXPECT_EQ(ModeOf((1u << 2) | (1u << 4), 1u << 13), X86Mode::kLong64);
  EXPECT_EQ(ModeOf((1u << 2) | (1u << 4), 1u << 14), X86Mode::kProtected32);  // compat mode
}

TEST(DecodeMessage, ExecuteAccessIsAnInternalError) {
  auto m = DecodeMessage(MemoryMessage(HVMSG_UNMAPPED_GPA, Header(2), 0xD0000000, {}));
  ASSERT_TRUE(m.has_value());
  const auto& e = std::get<InternalErrorExit>(std::get<VcpuExit>(*m));
  EXPECT_EQ(e.suberror, HVMSG_UNMAPPED_GPA);
  EXPECT_EQ(e.data[0], 0xD0000000u);
  EXPECT_EQ(e.data[1], 0xFFF0u);
}

TEST(DecodeMessage, FinalExits) {
  auto halt = DecodeMessage(PlainMessage(HVMSG_X64_HALT, 40));
  ASSERT_TRUE(halt.has_value());
  EXPECT_TRUE(std::holds_alternative<HaltExit>(std::get<VcpuExit>(*halt)));

  auto dead = DecodeMessage(PlainMessage(HVMSG_UNRECOVERABLE_EXCEPTION, 40));
  ASSERT_TRUE(dead.has_value());
  EXPECT_TRUE(std::holds_alternative<ShutdownExit>(std::get<VcpuExit>(*dead)));

  for (uint32_t type : {HVMSG_INVALID_VP_REGISTER_VALUE, HVMSG_UNSUPPORTED_FEATURE}) {
    auto m = DecodeMessage(PlainMessage(type, 0));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(std::get<InternalErrorExit>(std::get<VcpuExit>(*m)).suberror, type);
  }
  for (uint32_t type : {uint32_t{HVMSG_X64_MSR_INTERCEPT}, uint32_t{HVMSG_X64_SIPI_INTERCEPT},
                        uint32_t{HVMSG_HYPERCALL_INTERCEPT}, 0x12345678u}) {
    auto m = DecodeMessage(PlainMessage(type, 0));
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(std::get<UnknownExit>(std::get<VcpuExit>(*m)).reason, type);
  }
}

TEST(DecodeMessage, CpuidInterceptCarriesTheLeafAndTheHypervisorsResult) {
  InterceptHeader h = Header(2, 2);
  h.rip = 0x7000;
  auto m = DecodeMessage(CpuidMessage(h, 0xFFFFFFFF00000007ull, 0x1234567800000001ull,
                                      {0x11, 0x22, 0x33, 0x44}));
  ASSERT_TRUE(m.has_value()) << m.error().Message();
  const auto& c = std::get<CpuidIntercept>(*m);
  EXPECT_EQ(c.function, 7u);  // EAX and ECX only: the upper halves are not inputs
  EXPECT_EQ(c.index, 1u);
  EXPECT_EQ(c.default_rax, 0x11u);
  EXPECT_EQ(c.default_rbx, 0x22u);
  EXPECT_EQ(c.default_rcx, 0x33u);
  EXPECT_EQ(c.default_rdx, 0x44u);
  EXPECT_EQ(c.rip, 0x7000u);
  EXPECT_EQ(c.instruction_length, 2);
}

TEST(DecodeMessage, NoneAndTimerRunAgain) {
  for (uint32_t type : {HVMSG_NONE, HVMSG_TIMER_EXPIRED}) {
    auto m = DecodeMessage(PlainMessage(type, 0));
    ASSERT_TRUE(m.has_value());
    EXPECT_TRUE(std::holds_alternative<RunAgain>(*m));
  }
}

struct Garbage {
  const char* name;
  mshv_run_vp run;
  const char* why;
};

std::vector<Garbage> GarbageCases() {
  std::vector<Garbage> out;
  out.push_back({"io payload too short", IoPortMessage(Header(1, 1), 0x80, 1, 0, 127),
                 "payload_size 127 < 128"});
  out.push_back({"memory payload too short",
                 MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0), 0x1000, {0x8B, 0x00}, 79),
                 "payload_size 79 < 80"});
  out.push_back({"memory payload empty",
                 MemoryMessage(HVMSG_GPA_INTERCEPT, Header(0), 0x1000, {0x8B, 0x00}, 0),
                 "payload_size 0"});
  out.push_back({"payload beyond the buffer", PlainMessage(HVMSG_X64_HALT, 241), "> 240"});
  out.push_back({"io size 3", IoPortMessage(Header(1, 1), 0x80, 3, 0), "access size 3"});
  out.push_back({"io size 0", IoPortMessage(Header(1, 1), 0x80, 0, 0), "access size 0"});
  out.push_back({"io access type execute", IoPortMessage(Header(2, 1), 0x80, 1, 0),
                 "access type 2"});
  out.push_back({"io instruction length 0", IoPortMessage(Header(1, 0), 0x80, 1, 0),
                 "instruction length 0"});
  mshv_run_vp bad_count = IoPortMessage(Header(1, 1), 0x80, 1, 0);
  bad_count.msg_buf[16 + 43] = 17;
  out.push_back({"io instruction_byte_count 17", bad_count, "instruction_byte_count 17"});
  mshv_run_vp mem_count = MemoryMessage(HVMSG_UNMAPPED_GPA, Header(0), 0x1000, {0x8B, 0x00});
  mem_count.msg_buf[16 + 44] = 0xFF;
  out.push_back({"memory instruction_byte_count 255", mem_count, "instruction_byte_count 255"});
  out.push_back({"memory access type 7",
                 MemoryMessage(HVMSG_UNMAPPED_GPA, Header(7), 0x1000, {0x8B, 0x00}),
                 "access type 7"});
  out.push_back({"cpuid payload too short", CpuidMessage(Header(2, 2), 1, 0, {}, 103),
                 "payload_size 103 < 104"});
  out.push_back({"cpuid instruction length 0", CpuidMessage(Header(2, 0), 1, 0, {}),
                 "instruction length 0"});
  return out;
}

TEST(DecodeMessage, TruncatedAndGarbagePayloadsFailClearly) {
  for (const Garbage& g : GarbageCases()) {
    auto m = DecodeMessage(g.run);
    ASSERT_FALSE(m.has_value()) << g.name;
    EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument) << g.name;
    EXPECT_STREQ(m.error().operation, "MSHV_RUN_VP") << g.name;
    EXPECT_THAT(m.error().detail, HasSubstr(g.why)) << g.name;
  }
}

TEST(DecodeMessage, RandomBytesNeverCrash) {
  // Deterministic pseudo-random buffers with each handled type: decoding must return a value
  // or a clear error, never read outside the 256 bytes (ASan builds check that).
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const uint32_t types[] = {HVMSG_X64_IO_PORT_INTERCEPT, HVMSG_UNMAPPED_GPA, HVMSG_GPA_INTERCEPT,
                            HVMSG_X64_HALT, HVMSG_X64_CPUID_INTERCEPT};
  for (int i = 0; i < 2000; ++i) {
    mshv_run_vp run;
    for (auto& b : run.msg_buf) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = static_cast<uint8_t>(x);
    }
    PutLe(run.msg_buf, 0, types[i % 5], 4);
    auto m = DecodeMessage(run);
    if (!m) {
      EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);
    }
  }
}

}  // namespace
}  // namespace virt::mshv::test
