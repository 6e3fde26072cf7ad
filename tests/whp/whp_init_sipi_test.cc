// Checks InitSipiControls: each xAPIC ICR form of INIT and SIPI becomes the exact
// WHV_INTERRUPT_CONTROLs WHvRequestInterrupt needs, shorthands expanded over the VP indices.
#include <gtest/gtest.h>

#include <vector>

#include "mock_whp_api.h"
#include "whp_init_sipi.h"

namespace virt::whp {
namespace {

using test::SameControl;

WHV_INTERRUPT_CONTROL Control(uint32_t type, uint32_t mode, uint32_t trigger, uint32_t dest,
                              uint32_t vector) {
  WHV_INTERRUPT_CONTROL c{};
  c.Type = type;
  c.DestinationMode = mode;
  c.TriggerMode = trigger;
  c.Destination = dest;
  c.Vector = vector;
  return c;
}

void ExpectControls(const std::optional<std::vector<WHV_INTERRUPT_CONTROL>>& got,
                    const std::vector<WHV_INTERRUPT_CONTROL>& want) {
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(SameControl((*got)[i], want[i]))
        << "control " << i << ": type " << (*got)[i].Type << " dest " << (*got)[i].Destination
        << " vector " << (*got)[i].Vector << " mode " << (*got)[i].DestinationMode
        << " trigger " << (*got)[i].TriggerMode;
  }
}

// The ICR values Linux and kvm-unit-tests write: INIT assert 0x4500 / SIPI 0x4600 | vector,
// shorthand "all excluding self" 0xC0000.
TEST(InitSipiControlsTest, AllExcludingSelfReachesEveryOtherVp) {
  ExpectControls(InitSipiControls(0x000C4500, /*self=*/0, /*vcpu_count=*/4),
                 {Control(5, 0, 0, 1, 0), Control(5, 0, 0, 2, 0), Control(5, 0, 0, 3, 0)});
  ExpectControls(InitSipiControls(0x000C4610, 0, 4),
                 {Control(6, 0, 0, 1, 0x10), Control(6, 0, 0, 2, 0x10),
                  Control(6, 0, 0, 3, 0x10)});
  ExpectControls(InitSipiControls(0x000C4600, 2, 3),  // from VP 2, vector 0
                 {Control(6, 0, 0, 0, 0), Control(6, 0, 0, 1, 0)});
}

TEST(InitSipiControlsTest, SelfAndAllIncludingSelf) {
  ExpectControls(InitSipiControls(0x00044500, 1, 4), {Control(5, 0, 0, 1, 0)});
  ExpectControls(InitSipiControls(0x00084608, 1, 2),
                 {Control(6, 0, 0, 0, 8), Control(6, 0, 0, 1, 8)});
}

TEST(InitSipiControlsTest, NoShorthandUsesTheDestinationField) {
  // Physical destination 2 in ICR bits 63:56.
  ExpectControls(InitSipiControls((uint64_t{2} << 56) | 0x4500, 0, 4), {Control(5, 0, 0, 2, 0)});
  ExpectControls(InitSipiControls((uint64_t{3} << 56) | 0x469A, 0, 4),
                 {Control(6, 0, 0, 3, 0x9A)});
  // Logical mode (bit 11) is passed on for WHP to resolve; trigger level (bit 15) too.
  ExpectControls(InitSipiControls((uint64_t{0x0C} << 56) | 0xCD00, 0, 4),
                 {Control(5, 1, 1, 0x0C, 0)});
}

TEST(InitSipiControlsTest, InitLevelDeassertIsDropped) {
  // Level 0, trigger level: the MP-spec "INIT de-assert"; delivering it would re-INIT the AP.
  auto controls = InitSipiControls(0x000C8500, 0, 4);
  ASSERT_TRUE(controls.has_value());
  EXPECT_TRUE(controls->empty());
}

TEST(InitSipiControlsTest, OtherDeliveryModesAreNotInitOrSipi) {
  EXPECT_FALSE(InitSipiControls(0x000C4030, 0, 4).has_value());  // fixed
  EXPECT_FALSE(InitSipiControls(0x000C4400, 0, 4).has_value());  // NMI
  EXPECT_FALSE(InitSipiControls(0x000C4200, 0, 4).has_value());  // SMI
}

}  // namespace
}  // namespace virt::whp
