// Table tests of DecodeMmioInstruction: every MOV form, widths 1/2/4/8, prefixes, rejections.
#include "virt/x86_mmio_decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace virt {
namespace {

using ::testing::HasSubstr;

struct Case {
  const char* name;
  std::vector<uint8_t> bytes;
  X86Mode mode;
  MmioInstruction want;
};

MmioInstruction Reg(bool write, uint8_t width, uint8_t reg, uint8_t length,
                    uint8_t register_width = 0, MmioExtension ext = MmioExtension::kNone,
                    bool high = false) {
  MmioInstruction i;
  i.is_write = write;
  i.width = width;
  i.operand = MmioOperand::kRegister;
  i.reg = reg;
  i.high_byte = high;
  i.extension = ext;
  i.register_width = register_width == 0 ? width : register_width;
  i.length = length;
  return i;
}

MmioInstruction Imm(uint8_t width, uint64_t value, uint8_t length) {
  MmioInstruction i;
  i.is_write = true;
  i.width = width;
  i.operand = MmioOperand::kImmediate;
  i.immediate = value;
  i.register_width = width;
  i.length = length;
  return i;
}

constexpr X86Mode k64 = X86Mode::kLong64;
constexpr X86Mode k32 = X86Mode::kProtected32;
constexpr X86Mode k16 = X86Mode::kReal16;

const Case kCases[] = {
    // mov r/m, r (88/89): writes.
    {"mov [rax], cl", {0x88, 0x08}, k64, Reg(true, 1, 1, 2)},
    {"mov [rax], ah", {0x88, 0x20}, k64, Reg(true, 1, 0, 2, 1, MmioExtension::kNone, true)},
    {"mov [rax], spl (REX)", {0x40, 0x88, 0x20}, k64, Reg(true, 1, 4, 3)},
    {"mov [rax], r9b", {0x44, 0x88, 0x08}, k64, Reg(true, 1, 9, 3)},
    {"mov [rax], cx", {0x66, 0x89, 0x08}, k64, Reg(true, 2, 1, 3)},
    {"mov [rax], ecx", {0x89, 0x08}, k64, Reg(true, 4, 1, 2)},
    {"mov [rax], rcx", {0x48, 0x89, 0x08}, k64, Reg(true, 8, 1, 3)},
    {"mov [rax], r15 (REX.WR)", {0x4C, 0x89, 0x38}, k64, Reg(true, 8, 15, 3)},
    {"REX.W beats 0x66", {0x66, 0x48, 0x89, 0x08}, k64, Reg(true, 8, 1, 4)},
    {"mov [r8+rcx*4+0x10], edx (REX.XB, SIB, disp8)", {0x43, 0x89, 0x54, 0x88, 0x10}, k64,
     Reg(true, 4, 2, 5)},
    {"mov [rip+disp32], eax", {0x89, 0x05, 0x00, 0x10, 0x00, 0x00}, k64, Reg(true, 4, 0, 6)},
    {"mov [rbx+disp32], esi", {0x89, 0xB3, 0x78, 0x56, 0x34, 0x12}, k64, Reg(true, 4, 6, 6)},
    {"mov [disp32 via SIB no base], eax", {0x89, 0x04, 0x25, 0x00, 0x00, 0xE0, 0xFE}, k64,
     Reg(true, 4, 0, 7)},
    {"segment + lock prefixes skipped", {0x64, 0xF0, 0x89, 0x08}, k64, Reg(true, 4, 1, 4)},
    // mov r, r/m (8A/8B): reads.
    {"mov dl, [rax]", {0x8A, 0x10}, k64, Reg(false, 1, 2, 2)},
    {"mov bh, [rax]", {0x8A, 0x38}, k64, Reg(false, 1, 3, 2, 1, MmioExtension::kNone, true)},
    {"mov dx, [rax]", {0x66, 0x8B, 0x10}, k64, Reg(false, 2, 2, 3)},
    {"mov edx, [rax+0x7f]", {0x8B, 0x50, 0x7F}, k64, Reg(false, 4, 2, 3)},
    {"mov r10, [rax]", {0x4C, 0x8B, 0x10}, k64, Reg(false, 8, 10, 3)},
    // mov r/m, imm (C6/C7).
    {"mov byte [rax], 0xab", {0xC6, 0x00, 0xAB}, k64, Imm(1, 0xAB, 3)},
    {"mov word [rax], 0x1234", {0x66, 0xC7, 0x00, 0x34, 0x12}, k64, Imm(2, 0x1234, 5)},
    {"mov dword [rax+8], 0xdeadbeef", {0xC7, 0x40, 0x08, 0xEF, 0xBE, 0xAD, 0xDE}, k64,
     Imm(4, 0xDEADBEEF, 7)},
    {"mov qword [rax], -2 (imm32 sign-extended)", {0x48, 0xC7, 0x00, 0xFE, 0xFF, 0xFF, 0xFF},
     k64, Imm(8, 0xFFFFFFFFFFFFFFFEull, 7)},
    {"mov qword [rax], 0x7fffffff", {0x48, 0xC7, 0x00, 0xFF, 0xFF, 0xFF, 0x7F}, k64,
     Imm(8, 0x7FFFFFFF, 7)},
    // movzx / movsx.
    {"movzx eax, byte [rbx]", {0x0F, 0xB6, 0x03}, k64, Reg(false, 1, 0, 3, 4, MmioExtension::kZero)},
    {"movzx ax, byte [rbx]", {0x66, 0x0F, 0xB6, 0x03}, k64,
     Reg(false, 1, 0, 4, 2, MmioExtension::kZero)},
    {"movzx r11, word [rbx]", {0x4C, 0x0F, 0xB7, 0x1B}, k64,
     Reg(false, 2, 11, 4, 8, MmioExtension::kZero)},
    {"movsx ecx, byte [rbx]", {0x0F, 0xBE, 0x0B}, k64, Reg(false, 1, 1, 3, 4, MmioExtension::kSign)},
    {"movsx rcx, word [rbx]", {0x48, 0x0F, 0xBF, 0x0B}, k64,
     Reg(false, 2, 1, 4, 8, MmioExtension::kSign)},
    // moffs forms (64-bit mode: 8-byte address, 4 with 0x67).
    {"mov al, [moffs64]", {0xA0, 1, 2, 3, 4, 5, 6, 7, 8}, k64, Reg(false, 1, 0, 9)},
    {"mov rax, [moffs64]", {0x48, 0xA1, 1, 2, 3, 4, 5, 6, 7, 8}, k64, Reg(false, 8, 0, 10)},
    {"mov [moffs32], eax (0x67)", {0x67, 0xA3, 1, 2, 3, 4}, k64, Reg(true, 4, 0, 6)},
    {"mov [moffs64], al", {0xA2, 1, 2, 3, 4, 5, 6, 7, 8}, k64, Reg(true, 1, 0, 9)},
    // 32-bit and 16-bit code.
    {"32-bit: 0x48 is not REX", {0x89, 0x08}, k32, Reg(true, 4, 1, 2)},
    {"32-bit: mov [moffs32], eax", {0xA3, 0x00, 0x00, 0xE0, 0xFE}, k32, Reg(true, 4, 0, 5)},
    {"16-bit: mov [bx+si], ax", {0x89, 0x00}, k16, Reg(true, 2, 0, 2)},
    {"16-bit: mov [disp16], ax", {0x89, 0x06, 0x00, 0x10}, k16, Reg(true, 2, 0, 4)},
    {"16-bit: 0x66 makes it 32", {0x66, 0x89, 0x47, 0x04}, k16, Reg(true, 4, 0, 4)},
    {"16-bit: mov word [bx+disp16], imm16", {0xC7, 0x87, 0x00, 0x01, 0x34, 0x12}, k16,
     Imm(2, 0x1234, 6)},
    {"trailing bytes ignored", {0x89, 0x08, 0x90, 0x90}, k64, Reg(true, 4, 1, 2)},
};

class DecodeTable : public ::testing::TestWithParam<Case> {};

TEST_P(DecodeTable, Decodes) {
  const Case& c = GetParam();
  auto got = DecodeMmioInstruction(c.bytes, c.mode);
  ASSERT_TRUE(got.has_value()) << c.name << ": " << got.error().Message();
  EXPECT_EQ(got->is_write, c.want.is_write) << c.name;
  EXPECT_EQ(got->width, c.want.width) << c.name;
  EXPECT_EQ(got->operand, c.want.operand) << c.name;
  EXPECT_EQ(got->reg, c.want.reg) << c.name;
  EXPECT_EQ(got->high_byte, c.want.high_byte) << c.name;
  EXPECT_EQ(got->immediate, c.want.immediate) << c.name;
  EXPECT_EQ(got->extension, c.want.extension) << c.name;
  EXPECT_EQ(got->register_width, c.want.register_width) << c.name;
  EXPECT_EQ(got->length, c.want.length) << c.name;
}

INSTANTIATE_TEST_SUITE_P(MovForms, DecodeTable, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

struct Rejected {
  const char* name;
  std::vector<uint8_t> bytes;
  const char* why;  // substring of the error detail
};

const Rejected kRejected[] = {
    {"empty", {}, "truncated"},
    {"only prefixes", {0x66, 0x48}, "truncated"},
    {"0F without second byte", {0x0F}, "truncated"},
    {"missing ModRM", {0x89}, "truncated"},
    {"missing SIB", {0x89, 0x04}, "truncated"},
    {"missing disp32", {0x89, 0x80, 0x00, 0x00}, "truncated"},
    {"missing imm32", {0xC7, 0x00, 0x01, 0x02}, "truncated"},
    {"missing moffs", {0xA1, 0x00, 0x00}, "truncated"},
    {"add [rax], ecx", {0x01, 0x08}, "unsupported instruction"},
    {"stosd", {0xAB}, "unsupported instruction"},
    {"movs", {0xA5}, "unsupported instruction"},
    {"cmpxchg", {0x0F, 0xB1, 0x08}, "unsupported instruction"},
    {"mov ecx, eax (register form)", {0x89, 0xC1}, "register operand"},
    {"xabort (C6 F8)", {0xC6, 0xF8, 0x00}, "ModRM.reg"},
    {"C7 /1", {0xC7, 0x08, 0, 0, 0, 0}, "ModRM.reg"},
    {"16 prefixes", std::vector<uint8_t>(16, 0x66), "longer than 15"},
};

class RejectTable : public ::testing::TestWithParam<Rejected> {};

TEST_P(RejectTable, FailsWithClearError) {
  const Rejected& r = GetParam();
  // Copy into an exactly-sized heap buffer so a read past the end is caught by ASan.
  std::vector<uint8_t> exact(r.bytes);
  auto got = DecodeMmioInstruction(exact, X86Mode::kLong64);
  ASSERT_FALSE(got.has_value()) << r.name;
  EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument) << r.name;
  EXPECT_THAT(got.error().detail, HasSubstr(r.why)) << r.name;
}

INSTANTIATE_TEST_SUITE_P(Encodings, RejectTable, ::testing::ValuesIn(kRejected),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(DecodeMmioInstruction, UnsupportedErrorCarriesTheBytes) {
  const uint8_t bytes[] = {0x0F, 0x05};  // syscall
  auto got = DecodeMmioInstruction(bytes, X86Mode::kLong64);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error().detail, HasSubstr("0f 05"));
}

TEST(DecodeMmioInstruction, EveryPrefixOfAValidInstructionIsTruncated) {
  const std::vector<uint8_t> full = {0x66, 0x41, 0xC7, 0x84, 0x24, 1, 2, 3, 4, 0x34, 0x12};
  ASSERT_TRUE(DecodeMmioInstruction(full, X86Mode::kLong64).has_value());
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
    auto got = DecodeMmioInstruction(cut, X86Mode::kLong64);
    ASSERT_FALSE(got.has_value()) << n;
    EXPECT_THAT(got.error().detail, HasSubstr("truncated")) << n;
  }
}

// Found by fuzz_x86_mmio_decoder: 11 prefixes and A2 (mov moffs64, al) need 8 address bytes
// after the 16 a WHP/MSHV exit carries; the instruction would be 20 bytes long, so it is
// rejected as over-long, not reported "truncated" (which tells a caller to fetch more bytes).
TEST(DecodeMmioInstruction, RunningOutAfter15BytesIsLongerThan15NotTruncated) {
  std::vector<uint8_t> bytes = {0x36, 0x26, 0x36, 0x26, 0x36, 0x26, 0x36, 0x26,
                                0x36, 0x26, 0x36, 0xA2, 0x36, 0x88, 0x3F, 0xA2};
  auto got = DecodeMmioInstruction(bytes, X86Mode::kLong64);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error().detail, HasSubstr("longer than 15 bytes"));
  // 15 bytes that end inside a ModRM operand: same answer. 14 may still be a short fetch.
  std::vector<uint8_t> fifteen(14, 0x66);
  fifteen.push_back(0x89);
  got = DecodeMmioInstruction(fifteen, X86Mode::kProtected32);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error().detail, HasSubstr("longer than 15 bytes"));
  fifteen.pop_back();
  fifteen.back() = 0x89;
  got = DecodeMmioInstruction(fifteen, X86Mode::kProtected32);
  ASSERT_FALSE(got.has_value());
  EXPECT_THAT(got.error().detail, HasSubstr("truncated"));
}

TEST(ApplyIoIn, InAlAndAxKeepTheRestOfRaxAndInEaxZeroExtends) {
  const uint64_t old = 0x1122334455667788;
  const uint8_t byte[] = {0xAB};
  const uint8_t word[] = {0xEF, 0xBE};
  const uint8_t dword[] = {0xEF, 0xBE, 0xAD, 0xDE};
  EXPECT_EQ(ApplyIoIn(old, byte), 0x11223344556677ABull);
  EXPECT_EQ(ApplyIoIn(old, word), 0x112233445566BEEFull);
  EXPECT_EQ(ApplyIoIn(old, dword), 0xDEADBEEFull);
}

TEST(ApplyMmioRead, MergesLikeX86) {
  auto rd = [](const std::vector<uint8_t>& bytes) {
    return *DecodeMmioInstruction(bytes, X86Mode::kLong64);
  };
  const uint64_t old = 0x1122334455667788;
  EXPECT_EQ(ApplyMmioRead(rd({0x8A, 0x00}), old, 0xAB), 0x11223344556677ABull);       // al
  EXPECT_EQ(ApplyMmioRead(rd({0x8A, 0x20}), old, 0xAB), 0x112233445566AB88ull);       // ah
  EXPECT_EQ(ApplyMmioRead(rd({0x66, 0x8B, 0x00}), old, 0xBEEF), 0x112233445566BEEFull);
  EXPECT_EQ(ApplyMmioRead(rd({0x8B, 0x00}), old, 0xDEADBEEF), 0xDEADBEEFull);  // zero-extends
  EXPECT_EQ(ApplyMmioRead(rd({0x48, 0x8B, 0x00}), old, 0x0102030405060708),
            0x0102030405060708ull);
  EXPECT_EQ(ApplyMmioRead(rd({0x0F, 0xB6, 0x00}), old, 0x1FF), 0xFFull);          // movzx
  EXPECT_EQ(ApplyMmioRead(rd({0x48, 0x0F, 0xBE, 0x00}), old, 0x80), ~uint64_t{0x7F});
  EXPECT_EQ(ApplyMmioRead(rd({0x0F, 0xBF, 0x00}), old, 0x8000), 0xFFFF8000ull);   // movsx r32
  EXPECT_EQ(ApplyMmioRead(rd({0x66, 0x0F, 0xB6, 0x00}), old, 0xF0), 0x11223344556600F0ull);
  EXPECT_FALSE(MmioReadNeedsOldValue(rd({0x8B, 0x00})));
  EXPECT_TRUE(MmioReadNeedsOldValue(rd({0x8A, 0x00})));
}

TEST(MmioWriteValue, TakesTheAccessedBytes) {
  auto wr = [](const std::vector<uint8_t>& bytes) {
    return *DecodeMmioInstruction(bytes, X86Mode::kLong64);
  };
  const uint64_t reg = 0x1122334455667788;
  EXPECT_EQ(MmioWriteValue(wr({0x88, 0x00}), reg), 0x88u);
  EXPECT_EQ(MmioWriteValue(wr({0x88, 0x20}), reg), 0x77u);  // ah
  EXPECT_EQ(MmioWriteValue(wr({0x66, 0x89, 0x00}), reg), 0x7788u);
  EXPECT_EQ(MmioWriteValue(wr({0x89, 0x00}), reg), 0x55667788u);
  EXPECT_EQ(MmioWriteValue(wr({0x48, 0x89, 0x00}), reg), reg);
  EXPECT_EQ(MmioWriteValue(wr({0xC6, 0x00, 0x5A}), reg), 0x5Au);
}

}  // namespace
}  // namespace virt
