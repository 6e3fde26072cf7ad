// Cpuid: lookup with and without significant indices, editing, feature bits and APIC IDs.
#include "virt/cpuid.h"

#include <gtest/gtest.h>

#include "virt/mp_state.h"

namespace virt {
namespace {

constexpr CpuidEntry kLeaf0{0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69};
constexpr CpuidEntry kLeaf1{1, 0, 0, 0x806f8, 0x07020800, 0x80200000 | (1u << 21), 0x178bfbff};
constexpr CpuidEntry kLeaf7{7, 0, kCpuidIndexSignificant, 1, 0x80 | (1u << 20), 0, 0};
constexpr CpuidEntry kLeaf7Sub1{7, 1, kCpuidIndexSignificant, 0, 0, 0, 0x10};
constexpr CpuidEntry kLeafB0{0xB, 0, kCpuidIndexSignificant, 1, 1, 0x100, 7};
constexpr CpuidEntry kLeafB1{0xB, 1, kCpuidIndexSignificant, 4, 2, 0x201, 7};

Cpuid Table() {
  const CpuidEntry entries[] = {kLeaf0, kLeaf1, kLeaf7, kLeaf7Sub1, kLeafB0, kLeafB1};
  return Cpuid(entries);
}

TEST(CpuidTest, FindHonoursTheSignificantIndexFlag) {
  const Cpuid c = Table();
  // Leaf 1 has no significant index: every index answers with it.
  ASSERT_NE(c.Find(1, 0), nullptr);
  EXPECT_EQ(*c.Find(1, 5), kLeaf1);
  // Leaf 7's sub-leaves are distinct, and an unknown sub-leaf finds nothing.
  EXPECT_EQ(*c.Find(7, 0), kLeaf7);
  EXPECT_EQ(*c.Find(7, 1), kLeaf7Sub1);
  EXPECT_EQ(c.Find(7, 2), nullptr);
  EXPECT_EQ(c.Find(0x80000000), nullptr);
}

TEST(CpuidTest, SetReplacesTheSameSlotAndAppendsNewOnes) {
  Cpuid c = Table();
  CpuidEntry changed = kLeaf7Sub1;
  changed.edx = 0;
  c.Set(changed);
  EXPECT_EQ(c.size(), 6u);
  EXPECT_EQ(*c.Find(7, 1), changed);
  c.Set({0x80000000, 0, 0, 0x80000008, 0, 0, 0});
  EXPECT_EQ(c.size(), 7u);
  EXPECT_EQ(c.entries().back().function, 0x80000000u);
  EXPECT_TRUE(c.Remove(7, 1));
  EXPECT_FALSE(c.Remove(7, 1));
  EXPECT_EQ(c.Find(7, 1), nullptr);
  EXPECT_EQ(c.size(), 6u);
}

TEST(CpuidTest, ConstructionKeepsOrderAndTheLastDuplicate) {
  CpuidEntry again = kLeaf1;
  again.eax = 0x12345;
  const CpuidEntry entries[] = {kLeaf1, kLeaf0, again};
  const Cpuid c(entries);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c.entries()[0], again);
  EXPECT_EQ(c.entries()[1], kLeaf0);
}

TEST(CpuidTest, FeatureBitsCanBeHiddenAndShown) {
  Cpuid c = Table();
  EXPECT_TRUE(c.Has(cpuid_feature::kX2Apic));
  EXPECT_FALSE(c.Has(cpuid_feature::kTscDeadline));
  ASSERT_TRUE(c.SetFeature(cpuid_feature::kX2Apic, false));
  ASSERT_TRUE(c.SetFeature(cpuid_feature::kTscDeadline, true));
  EXPECT_FALSE(c.Has(cpuid_feature::kX2Apic));
  EXPECT_TRUE(c.Has(cpuid_feature::kTscDeadline));
  // Only those two bits moved.
  EXPECT_EQ(c.Find(1)->ecx, (kLeaf1.ecx & ~(1u << 21)) | (1u << 24));
  EXPECT_EQ(c.Find(1)->edx, kLeaf1.edx);
  // Leaf 7 features.
  EXPECT_TRUE(c.Has(cpuid_feature::kSmep));
  EXPECT_TRUE(c.Has(cpuid_feature::kSmap));
  ASSERT_TRUE(c.SetFeature(cpuid_feature::kSmap, false));
  EXPECT_EQ(c.Find(7, 0)->ebx, 0x80u);
}

TEST(CpuidTest, AFeatureOfAMissingLeafIsNotFoundAndChangesNothing) {
  Cpuid c = Table();
  const Cpuid before = c;
  auto s = c.SetFeature(cpuid_feature::kNx, true);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_NE(s.error().Message().find("0x80000001"), std::string::npos) << s.error().Message();
  EXPECT_NE(s.error().Message().find("nx"), std::string::npos);
  EXPECT_EQ(c, before);
  EXPECT_FALSE(c.Has(cpuid_feature::kNx));
}

TEST(CpuidTest, SetApicIdPatchesLeafOneAndEveryTopologySubleaf) {
  Cpuid c = Table();
  c.SetApicId(0x1234);
  EXPECT_EQ(c.Find(1)->ebx, (kLeaf1.ebx & 0x00ffffffu) | (0x34u << 24));
  EXPECT_EQ(c.Find(0xB, 0)->edx, 0x1234u);
  EXPECT_EQ(c.Find(0xB, 1)->edx, 0x1234u);
  EXPECT_EQ(c.Find(0xB, 1)->ecx, kLeafB1.ecx);  // the rest of the leaf is untouched
  EXPECT_EQ(c.ApicId(), 0x1234u);
  // Without leaf 0xB the 8-bit ID of leaf 1 is the answer; with neither, none.
  c.Remove(0xB, 0);
  c.Remove(0xB, 1);
  EXPECT_EQ(c.ApicId(), 0x34u);
  c.Remove(1);
  EXPECT_EQ(c.ApicId(), std::nullopt);
  EXPECT_EQ(Cpuid().ApicId(), std::nullopt);
}

TEST(CpuidTest, FeaturesAreFoundByTheirCommandLineNames) {
  auto x2apic = FindCpuidFeature("x2apic");
  ASSERT_TRUE(x2apic.has_value());
  EXPECT_EQ(*x2apic, cpuid_feature::kX2Apic);
  auto deadline = FindCpuidFeature("tsc-deadline");
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(*deadline, cpuid_feature::kTscDeadline);
  EXPECT_FALSE(FindCpuidFeature("x2APIC").has_value());
  EXPECT_FALSE(FindCpuidFeature("").has_value());
  for (const CpuidFeature& f : KnownCpuidFeatures()) {
    auto found = FindCpuidFeature(f.name);
    ASSERT_TRUE(found.has_value()) << f.name;
    EXPECT_EQ(*found, f) << f.name;
  }
}

TEST(MpStateTest, EveryStateHasItsName) {
  EXPECT_STREQ(ToString(MpState::kRunnable), "runnable");
  EXPECT_STREQ(ToString(MpState::kUninitialized), "uninitialized");
  EXPECT_STREQ(ToString(MpState::kInitReceived), "init_received");
  EXPECT_STREQ(ToString(MpState::kHalted), "halted");
  EXPECT_STREQ(ToString(MpState::kSipiReceived), "sipi_received");
}

}  // namespace
}  // namespace virt
