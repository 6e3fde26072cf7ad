// Checks MsiToInterruptControl: every WHV_INTERRUPT_CONTROL field from its MSI bits, the
// extended destination ID, and the MSIs WHP cannot take.
#include <gtest/gtest.h>

#include <cstring>

#include "whp_interrupt.h"

namespace virt::whp {
namespace {

WHV_INTERRUPT_CONTROL MustConvert(const MsiMessage& msi) {
  auto control = MsiToInterruptControl(msi);
  EXPECT_TRUE(control.has_value()) << (control ? "" : control.error().Message());
  return control ? *control : WHV_INTERRUPT_CONTROL{};
}

TEST(WhpInterruptTest, FixedPhysicalEdgeMsi) {
  const auto c = MustConvert(MsiMessage::Fixed(/*apic_id=*/3, /*vector=*/0x41));
  EXPECT_EQ(c.Type, uint64_t{WHvX64InterruptTypeFixed});
  EXPECT_EQ(c.DestinationMode, uint64_t{WHvX64InterruptDestinationModePhysical});
  EXPECT_EQ(c.TriggerMode, uint64_t{WHvX64InterruptTriggerModeEdge});
  EXPECT_EQ(c.Destination, 3u);
  EXPECT_EQ(c.Vector, 0x41u);
  EXPECT_EQ(c.Reserved, 0u);
}

TEST(WhpInterruptTest, EveryFieldComesFromItsBits) {
  // Logical destination 0x5a, lowest priority, level triggered (and asserted), vector 0xec.
  const MsiMessage msi{.address = 0xFEE00000u | (0x5au << 12) | (1u << 2),
                       .data = (1u << 15) | (1u << 14) | (1u << 8) | 0xec};
  const auto c = MustConvert(msi);
  EXPECT_EQ(c.Type, uint64_t{WHvX64InterruptTypeLowestPriority});
  EXPECT_EQ(c.DestinationMode, uint64_t{WHvX64InterruptDestinationModeLogical});
  EXPECT_EQ(c.TriggerMode, uint64_t{WHvX64InterruptTriggerModeLevel});
  EXPECT_EQ(c.Destination, 0x5au);
  EXPECT_EQ(c.Vector, 0xecu);
}

TEST(WhpInterruptTest, TheControlHasTheSdkBitLayout) {
  // Type in bits 7:0, DestinationMode 11:8, TriggerMode 15:12 of the first UINT64, then the
  // 32-bit destination and vector.
  const MsiMessage msi{.address = 0xFEE00000u | (0x12u << 12) | (1u << 2),
                       .data = (1u << 15) | (4u << 8) | 0x02};
  const auto c = MustConvert(msi);
  uint8_t raw[16];
  static_assert(sizeof c == sizeof raw);
  std::memcpy(raw, &c, sizeof raw);
  uint64_t first = 0;
  uint32_t destination = 0;
  uint32_t vector = 0;
  std::memcpy(&first, raw, 8);
  std::memcpy(&destination, raw + 8, 4);
  std::memcpy(&vector, raw + 12, 4);
  EXPECT_EQ(first, uint64_t{4} | (uint64_t{1} << 8) | (uint64_t{1} << 12));
  EXPECT_EQ(destination, 0x12u);
  EXPECT_EQ(vector, 0x02u);
}

TEST(WhpInterruptTest, NmiAndInitAreInjectable) {
  EXPECT_EQ(MustConvert({.address = 0xFEE00000, .data = 4u << 8}).Type,
            uint64_t{WHvX64InterruptTypeNmi});
  EXPECT_EQ(MustConvert({.address = 0xFEE00000, .data = 5u << 8}).Type,
            uint64_t{WHvX64InterruptTypeInit});
}

TEST(WhpInterruptTest, ExtendedDestinationIdGivesApicIdBits14To8) {
  // APIC ID 0x1234: bits 7:0 (0x34) in address[19:12], bits 14:8 (0x12) in address[11:5].
  const MsiMessage msi{.address = 0xFEE00000u | (0x34u << 12) | (0x12u << 5), .data = 0x30};
  EXPECT_EQ(MustConvert(msi).Destination, 0x1234u);
}

TEST(WhpInterruptTest, RejectsAnAddressOutsideTheMsiWindow) {
  auto c = MsiToInterruptControl({.address = 0xFED00000, .data = 0x30});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
}

TEST(WhpInterruptTest, RejectsUpperAddressBits) {
  auto c = MsiToInterruptControl({.address = 0x1'FEE00000ull, .data = 0x30});
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(c.error().detail.find("bit 31"), std::string::npos) << c.error().detail;
}

TEST(WhpInterruptTest, RejectsDeliveryModesWhpCannotInject) {
  for (uint32_t mode : {2u, 3u, 6u, 7u}) {
    auto c = MsiToInterruptControl({.address = 0xFEE00000, .data = (mode << 8) | 0x30});
    ASSERT_FALSE(c.has_value()) << "mode " << mode;
    EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument) << "mode " << mode;
  }
}

}  // namespace
}  // namespace virt::whp
