// Checks x86 MSI decoding (every address/data field), rejection of malformed MSIs, and Error::Message.
#include "virt/msi_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string>

#include "virt/result.h"

namespace virt {
namespace {

using ::testing::HasSubstr;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Decodes `msi`, failing the test (not crashing) when it does not decode.
DecodedMsi MustDecode(const MsiMessage& msi) {
  auto decoded = msi.Decode();
  EXPECT_TRUE(decoded.has_value()) << (decoded ? "" : decoded.error().Message());
  return decoded.value_or(DecodedMsi{});
}

TEST(MsiMessageTest, DecodesPlainFixedMessage) {
  const DecodedMsi d = MustDecode({0xFEE00000, 0x0030});
  EXPECT_EQ(d.destination, 0u);
  EXPECT_EQ(d.destination_mode, DestinationMode::kPhysical);
  EXPECT_FALSE(d.redirection_hint);
  EXPECT_EQ(d.vector, 0x30);
  EXPECT_EQ(d.delivery_mode, DeliveryMode::kFixed);
  EXPECT_EQ(d.trigger_mode, TriggerMode::kEdge);
  EXPECT_FALSE(d.level_assert);
}

TEST(MsiMessageTest, DestinationComesFromAddressBits19To12) {
  EXPECT_EQ(MustDecode({0xFEE01000, 0}).destination, 0x01u);
  EXPECT_EQ(MustDecode({0xFEEAB000, 0}).destination, 0xABu);
  EXPECT_EQ(MustDecode({0xFEEFF000, 0}).destination, 0xFFu);
  // Bits 11:4 are not destination bits (bits 3:2 are flags, the rest reserved).
  EXPECT_EQ(MustDecode({0xFEE00FF0, 0}).destination, 0u);
}

TEST(MsiMessageTest, AddressHiBits31To8AreExtendedDestination) {
  const uint64_t hi = 0x12345600;
  const DecodedMsi d = MustDecode({(hi << 32) | 0xFEE78000, 0x41});
  EXPECT_EQ(d.destination, 0x12345678u);
  EXPECT_EQ(d.vector, 0x41);

  EXPECT_EQ(MustDecode({(uint64_t{0xFFFFFF00} << 32) | 0xFEE00000, 0}).destination, 0xFFFFFF00u);
  EXPECT_EQ(MustDecode({(uint64_t{0x00000100} << 32) | 0xFEE00000, 0}).destination, 0x100u);
}

TEST(MsiMessageTest, DestinationModeIsAddressBit2) {
  EXPECT_EQ(MustDecode({0xFEE00004, 0}).destination_mode, DestinationMode::kLogical);
  EXPECT_EQ(MustDecode({0xFEE00000, 0}).destination_mode, DestinationMode::kPhysical);
  // Bit 3 alone must not flip the destination mode.
  EXPECT_EQ(MustDecode({0xFEE00008, 0}).destination_mode, DestinationMode::kPhysical);
}

TEST(MsiMessageTest, RedirectionHintIsAddressBit3) {
  EXPECT_TRUE(MustDecode({0xFEE00008, 0}).redirection_hint);
  EXPECT_FALSE(MustDecode({0xFEE00004, 0}).redirection_hint);
  const DecodedMsi both = MustDecode({0xFEE0300C, 0});
  EXPECT_TRUE(both.redirection_hint);
  EXPECT_EQ(both.destination_mode, DestinationMode::kLogical);
  EXPECT_EQ(both.destination, 0x03u);
}

TEST(MsiMessageTest, VectorIsDataBits7To0) {
  for (uint32_t v : {0x00u, 0x01u, 0x20u, 0x7Fu, 0x80u, 0xEFu, 0xFFu}) {
    // Set unrelated high bits too: they must not leak into the vector.
    EXPECT_EQ(MustDecode({0xFEE00000, 0xC000u | v}).vector, v) << "vector " << v;
  }
}

TEST(MsiMessageTest, DeliveryModeIsDataBits10To8) {
  struct Case {
    uint32_t bits;
    DeliveryMode mode;
  };
  for (const Case& c : {Case{0, DeliveryMode::kFixed}, Case{1, DeliveryMode::kLowestPriority},
                        Case{2, DeliveryMode::kSmi}, Case{4, DeliveryMode::kNmi},
                        Case{5, DeliveryMode::kInit}, Case{7, DeliveryMode::kExtInt}}) {
    const DecodedMsi d = MustDecode({0xFEE00000, (c.bits << 8) | 0x55});
    EXPECT_EQ(d.delivery_mode, c.mode) << "mode bits " << c.bits;
    EXPECT_EQ(d.vector, 0x55) << "mode bits " << c.bits;
  }
  // Bit 11 is outside the field: mode 1 with bit 11 set is still lowest priority.
  EXPECT_EQ(MustDecode({0xFEE00000, 0x0900}).delivery_mode, DeliveryMode::kLowestPriority);
}

TEST(MsiMessageTest, LevelAssertIsDataBit14AndTriggerModeIsBit15) {
  const DecodedMsi assert_only = MustDecode({0xFEE00000, 1u << 14});
  EXPECT_TRUE(assert_only.level_assert);
  EXPECT_EQ(assert_only.trigger_mode, TriggerMode::kEdge);

  const DecodedMsi level_only = MustDecode({0xFEE00000, 1u << 15});
  EXPECT_FALSE(level_only.level_assert);
  EXPECT_EQ(level_only.trigger_mode, TriggerMode::kLevel);

  const DecodedMsi both = MustDecode({0xFEE00000, (1u << 15) | (1u << 14) | 0x22});
  EXPECT_TRUE(both.level_assert);
  EXPECT_EQ(both.trigger_mode, TriggerMode::kLevel);
  EXPECT_EQ(both.vector, 0x22);
}

TEST(MsiMessageTest, DecodesAllFieldsTogether) {
  // Logical, RH, destination 0x5A, level-triggered asserted NMI vector 2.
  const DecodedMsi d = MustDecode({0xFEE5A00C, (1u << 15) | (1u << 14) | (4u << 8) | 0x02});
  const DecodedMsi expected{.destination = 0x5A,
                            .destination_mode = DestinationMode::kLogical,
                            .redirection_hint = true,
                            .vector = 0x02,
                            .delivery_mode = DeliveryMode::kNmi,
                            .trigger_mode = TriggerMode::kLevel,
                            .level_assert = true};
  EXPECT_EQ(d, expected);
}

TEST(MsiMessageTest, RejectsAddressesOutsideTheMsiWindow) {
  for (uint64_t address : {uint64_t{0xFED00000}, uint64_t{0xFEF00000}, uint64_t{0},
                           uint64_t{0xFEDFFFFF}, uint64_t{0x7EE00000}, uint64_t{0xFFE00000},
                           (uint64_t{0x01} << 32) | 0xFEE00000, (uint64_t{0xFF} << 32) | 0xFEE00000,
                           (uint64_t{0x12345601} << 32) | 0xFEE00000}) {
    auto decoded = MsiMessage{address, 0x30}.Decode();
    ASSERT_FALSE(decoded.has_value()) << std::hex << "address 0x" << address;
    EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument) << std::hex << address;
  }
}

TEST(MsiMessageTest, AcceptsTheWholeMsiWindow) {
  EXPECT_TRUE(MsiMessage({0xFEE00000, 0}).Decode().has_value());
  EXPECT_TRUE(MsiMessage({0xFEEFFFFF, 0}).Decode().has_value());
}

TEST(MsiMessageTest, RejectionMessageNamesTheAddress) {
  auto decoded = MsiMessage{0xFED00000, 0}.Decode();
  ASSERT_FALSE(decoded.has_value());
  const std::string message = Lower(decoded.error().Message());
  EXPECT_THAT(message, HasSubstr("fed00000"));
  EXPECT_THAT(message, HasSubstr("0xfee00000"));  // names the valid window too

  auto hi = MsiMessage{(uint64_t{0xAB} << 32) | 0xFEE00000, 0}.Decode();
  ASSERT_FALSE(hi.has_value());
  EXPECT_THAT(Lower(hi.error().Message()), HasSubstr("000000abfee00000"));
}

TEST(MsiMessageTest, RejectsReservedDeliveryModes) {
  for (uint32_t mode : {3u, 6u}) {
    auto decoded = MsiMessage{0xFEE00000, (mode << 8) | 0x30}.Decode();
    ASSERT_FALSE(decoded.has_value()) << "mode " << mode;
    EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(decoded.error().Message(), HasSubstr(std::to_string(mode))) << "mode " << mode;
  }
}

TEST(MsiMessageTest, FixedRoundTripsThroughDecode) {
  for (uint32_t apic : {0u, 1u, 7u, 0x80u, 0xFFu}) {
    for (uint32_t vector : {0x20u, 0x31u, 0xFEu}) {
      const MsiMessage msi = MsiMessage::Fixed(static_cast<uint8_t>(apic), static_cast<uint8_t>(vector));
      EXPECT_EQ(msi.address_hi(), 0u);
      EXPECT_EQ(msi.address & MsiMessage::kAddressMask, MsiMessage::kAddressBase);
      const DecodedMsi expected{.destination = apic,
                                .destination_mode = DestinationMode::kPhysical,
                                .redirection_hint = false,
                                .vector = static_cast<uint8_t>(vector),
                                .delivery_mode = DeliveryMode::kFixed,
                                .trigger_mode = TriggerMode::kEdge,
                                .level_assert = false};
      EXPECT_EQ(MustDecode(msi), expected) << "apic " << apic << " vector " << vector;
    }
  }
  EXPECT_NE(MsiMessage::Fixed(1, 0x30), MsiMessage::Fixed(2, 0x30));
  EXPECT_NE(MsiMessage::Fixed(1, 0x30), MsiMessage::Fixed(1, 0x31));
}

TEST(MsiMessageTest, AddressHalvesSplitTheAddress) {
  const MsiMessage msi{(uint64_t{0xCAFE0100} << 32) | 0xFEE12345, 0};
  EXPECT_EQ(msi.address_lo(), 0xFEE12345u);
  EXPECT_EQ(msi.address_hi(), 0xCAFE0100u);
}

// Error::Message lives in result.h; MSI errors are the first users of it, so it is checked here.
TEST(ErrorMessageTest, ErrnoErrorNamesOperationErrnoAndStrerror) {
  const Error e = Error::Errno("KVM_SET_GSI_ROUTING", EINVAL);
  EXPECT_EQ(e.code, ErrorCode::kNative);
  EXPECT_EQ(e.domain, NativeDomain::kErrno);
  EXPECT_EQ(e.native_code, EINVAL);
  const std::string message = e.Message();
  EXPECT_THAT(message, HasSubstr("KVM_SET_GSI_ROUTING"));
  EXPECT_THAT(message, HasSubstr("errno 22"));
  EXPECT_THAT(message, HasSubstr(std::strerror(EINVAL)));
  EXPECT_EQ(message.find("KVM_SET_GSI_ROUTING"), 0u) << message;

  const std::string with_detail = Error::Errno("open", ENOENT, "/dev/kvm").Message();
  EXPECT_THAT(with_detail, HasSubstr("open"));
  EXPECT_THAT(with_detail, HasSubstr("errno " + std::to_string(ENOENT)));
  EXPECT_THAT(with_detail, HasSubstr(std::strerror(ENOENT)));
  EXPECT_THAT(with_detail, HasSubstr("/dev/kvm"));
}

// IsValid is the inline fast check of the hot paths; it must accept exactly what Decode does.
TEST(MsiMessageTest, IsValidAgreesWithDecode) {
  const uint64_t addresses[] = {0xFEE00000,           0xFEEFF00C,          0xFEF00000,
                                0xFED00000,           0x00000000,          0x1FEE00000,
                                0xABCDEF00FEE01000ull, 0xABCDEF01FEE01000ull, 0xFFFFFFFFFEE00000ull};
  int valid = 0, invalid = 0;
  for (uint64_t address : addresses) {
    for (uint32_t mode = 0; mode < 8; ++mode) {
      for (uint32_t high : {0u, 1u << 15, (1u << 15) | (1u << 14), 0xFFFF0000u}) {
        const MsiMessage msi{address, high | (mode << 8) | 0x31};
        const bool decodes = msi.Decode().has_value();
        EXPECT_EQ(msi.IsValid(), decodes) << std::hex << address << " data " << msi.data;
        EXPECT_EQ(msi.level_triggered(), decodes ? msi.Decode()->trigger_mode == TriggerMode::kLevel
                                                 : ((msi.data >> 15) & 1) != 0);
        (decodes ? valid : invalid)++;
      }
    }
  }
  EXPECT_GT(valid, 0);
  EXPECT_GT(invalid, 0);
}

TEST(ErrorMessageTest, CodeOnlyErrorNamesOperationCodeAndDetail) {
  const Error e = Error::Make(ErrorCode::kExhausted, "GsiTable::Allocate", "table full");
  EXPECT_EQ(e.domain, NativeDomain::kNone);
  const std::string message = e.Message();
  EXPECT_THAT(message, HasSubstr("GsiTable::Allocate"));
  EXPECT_THAT(message, HasSubstr(ToString(ErrorCode::kExhausted)));
  EXPECT_THAT(message, HasSubstr("table full"));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("errno")));

  const std::string bare = Error::Make(ErrorCode::kNotFound, "Partition::UnmapMemory").Message();
  EXPECT_THAT(bare, HasSubstr("Partition::UnmapMemory"));
  EXPECT_THAT(bare, HasSubstr(ToString(ErrorCode::kNotFound)));
  EXPECT_STRNE(ToString(ErrorCode::kNotFound), ToString(ErrorCode::kExhausted));
}

}  // namespace
}  // namespace virt
