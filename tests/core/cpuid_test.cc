// Cpuid: lookup with and without significant indices, editing, feature bits and APIC IDs.
#include "virt/cpuid.h"

#include <gtest/gtest.h>

#include <algorithm>

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

TEST(CpuidTest, ConstructionMatchesRepeatedSetForUnorderedTablesWithDuplicates) {
  CpuidEntry b1_again = kLeafB1;
  b1_again.edx = 9;
  CpuidEntry leaf0_again = kLeaf0;
  leaf0_again.eax = 0x20;
  CpuidEntry leaf0_third = kLeaf0;
  leaf0_third.eax = 0x21;
  const CpuidEntry entries[] = {kLeafB1, kLeaf0, kLeaf7Sub1, leaf0_again, kLeaf7,
                                b1_again, kLeaf1, leaf0_third};
  Cpuid by_set;
  for (const CpuidEntry& e : entries) by_set.Set(e);
  const Cpuid c(entries);
  ASSERT_EQ(c.size(), 5u);
  EXPECT_TRUE(std::ranges::equal(c.entries(), by_set.entries()));
  EXPECT_EQ(c.entries()[0], b1_again);
  EXPECT_EQ(c.entries()[1], leaf0_third);
  // An already ascending table is kept as it is.
  const Cpuid ascending = Table();
  EXPECT_EQ(ascending.size(), 6u);
  EXPECT_EQ(ascending.entries()[5], kLeafB1);
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

TEST(CpuidTest, SetTopologyDescribesOnePackageOfSingleThreadedCores) {
  // What KVM's supported set looks like: leaf 0 says 0x1F exists, the topology leaves are blank.
  const CpuidEntry entries[] = {{0, 0, 0, 0x20, 0, 0, 0},
                                {1, 0, 0, 0x806f8, 0x00010800, 0, 0x0f8bfbff},
                                {0xB, 0, kCpuidIndexSignificant, 0, 0, 0, 1},
                                {0x1F, 0, kCpuidIndexSignificant, 0, 0, 0, 1}};
  Cpuid c{entries};
  ASSERT_TRUE(c.SetTopology(5, 6));
  EXPECT_EQ(c.Find(1)->ebx, 0x05080800u);  // APIC ID 5, 8 addressable IDs, CLFLUSH kept
  EXPECT_TRUE((c.Find(1)->edx >> 28) & 1);
  for (uint32_t leaf : {0xBu, 0x1Fu}) {
    SCOPED_TRACE(leaf);
    EXPECT_EQ(*c.Find(leaf, 0), (CpuidEntry{leaf, 0, kCpuidIndexSignificant, 0, 1, 0x100, 5}));
    EXPECT_EQ(*c.Find(leaf, 1), (CpuidEntry{leaf, 1, kCpuidIndexSignificant, 3, 6, 0x201, 5}));
    EXPECT_EQ(*c.Find(leaf, 2), (CpuidEntry{leaf, 2, kCpuidIndexSignificant, 0, 0, 2, 5}));
  }
  EXPECT_EQ(c.ApicId(), 5u);
  EXPECT_EQ(c.size(), 8u);

  // One vCPU: no HTT, shift 0.
  ASSERT_TRUE(c.SetTopology(0, 1));
  EXPECT_FALSE((c.Find(1)->edx >> 28) & 1);
  EXPECT_EQ(c.Find(0xB, 1)->eax, 0u);
  EXPECT_EQ(c.Find(0xB, 1)->ebx, 1u);
  EXPECT_EQ(c.size(), 8u);
}

TEST(CpuidTest, SetTopologyAddsOnlyLeavesTheMaximumLeafCovers) {
  const CpuidEntry entries[] = {{0, 0, 0, 0xa, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0}};
  Cpuid c{entries};
  ASSERT_TRUE(c.SetTopology(1, 2));
  EXPECT_EQ(c.Find(0xB, 0), nullptr);
  EXPECT_EQ(c.Find(1)->ebx >> 16, 0x0102u);
  const CpuidEntry with_b[] = {{0, 0, 0, 0x10, 0, 0, 0}};
  Cpuid d{with_b};
  ASSERT_TRUE(d.SetTopology(3, 4));
  ASSERT_NE(d.Find(0xB, 1), nullptr);
  EXPECT_EQ(d.Find(0xB, 1)->eax, 2u);
  EXPECT_EQ(d.Find(0x1F, 0), nullptr) << "0x1F only when the table had it";
}

TEST(CpuidTest, SetTopologyRefusesIdsThatDoNotFit) {
  Cpuid c = Table();
  const Cpuid before = c;
  EXPECT_EQ(c.SetTopology(0, 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.SetTopology(4, 4).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c.SetTopology(2, 1).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(c, before);
  EXPECT_TRUE(c.SetTopology(3, 3));  // 3 vCPUs: IDs 0..3 addressable
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
