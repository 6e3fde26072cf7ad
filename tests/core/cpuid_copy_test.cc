// Cpuid copies: equality and assignment stay exact across every kind of change, including the
// shortcuts a copy of an unchanged table takes (Cpuid's version).
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "virt/cpuid.h"

namespace virt {
namespace cpuid_copy_test {  // named: the unity build shares one TU with cpuid_test.cc
namespace {

constexpr CpuidEntry kLeaf0{0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69};
constexpr CpuidEntry kLeaf1{1, 0, 0, 0x806f8, 0x07020800, 0x80200000, 0x178bfbff};
constexpr CpuidEntry kLeaf7{7, 0, kCpuidIndexSignificant, 1, 0x80, 0, 0};
constexpr CpuidEntry kLeafB0{0xB, 0, kCpuidIndexSignificant, 1, 1, 0x100, 7};

Cpuid Table() {
  const CpuidEntry entries[] = {kLeaf0, kLeaf1, kLeaf7, kLeafB0};
  return Cpuid(entries);
}

std::vector<CpuidEntry> EntriesOf(const Cpuid& c) { return {c.entries().begin(), c.entries().end()}; }

struct Change {
  const char* name;
  std::function<void(Cpuid&)> apply;
};

// Every way to change a table's entries; each changes Table() for certain.
std::vector<Change> Changes() {
  return {
      {"Set replacing", [](Cpuid& c) { c.Set({1, 0, 0, 1, 2, 3, 4}); }},
      {"Set adding", [](Cpuid& c) { c.Set({0x80000000, 0, 0, 0x80000008, 0, 0, 0}); }},
      {"Remove", [](Cpuid& c) { ASSERT_TRUE(c.Remove(7, 0)); }},
      {"SetFeature", [](Cpuid& c) { ASSERT_TRUE(c.SetFeature(cpuid_feature::kTscDeadline, true)); }},
      {"SetApicId", [](Cpuid& c) { c.SetApicId(5); }},
      {"SetTopology", [](Cpuid& c) { ASSERT_TRUE(c.SetTopology(3, 4)); }},
      {"a write through Find", [](Cpuid& c) { c.Find(1)->eax ^= 1; }},
      {"move-assigning another table", [](Cpuid& c) {
         const CpuidEntry one[] = {kLeaf0};
         c = Cpuid(one);
       }},
  };
}

TEST(CpuidCopyTest, ACopyStopsComparingEqualWhenEitherSideChanges) {
  for (const Change& change : Changes()) {
    SCOPED_TRACE(change.name);
    const Cpuid original = Table();
    Cpuid changed = original;
    ASSERT_EQ(changed, original);
    change.apply(changed);
    EXPECT_NE(changed, original);
    EXPECT_NE(original, changed);
    EXPECT_NE(EntriesOf(changed), EntriesOf(original));

    // The same change the other way round: the copy stays as the original was.
    Cpuid copy = original;
    Cpuid source = original;
    change.apply(source);
    EXPECT_EQ(copy, original);
    EXPECT_NE(copy, source);
  }
}

TEST(CpuidCopyTest, AssigningAChangedTableCopiesItsEntries) {
  for (const Change& change : Changes()) {
    SCOPED_TRACE(change.name);
    Cpuid target = Table();
    Cpuid source = target;  // the same table, the same contents
    change.apply(source);
    target = source;
    EXPECT_EQ(EntriesOf(target), EntriesOf(source));
    EXPECT_EQ(target, source);
    // Assigning the original back undoes it.
    const Cpuid original = Table();
    target = original;
    EXPECT_EQ(EntriesOf(target), EntriesOf(original));
  }
}

TEST(CpuidCopyTest, APointerFromFindKeptAcrossACopyChangesOnlyItsOwnTable) {
  Cpuid a = Table();
  CpuidEntry* leaf1 = a.Find(1);
  ASSERT_NE(leaf1, nullptr);
  Cpuid before = a;  // copied while the pointer is held
  leaf1->ecx |= 1u << 24;  // TSC deadline, clear in kLeaf1
  EXPECT_NE(a, before);
  EXPECT_EQ(before.Find(1)->ecx, kLeaf1.ecx);
  // Assigning from the table written through the pointer copies what it holds now.
  before = a;
  EXPECT_EQ(before.Find(1)->ecx, kLeaf1.ecx | (1u << 24));
  EXPECT_EQ(before, a);
}

TEST(CpuidCopyTest, TablesBuiltApartCompareByTheirEntries) {
  EXPECT_EQ(Table(), Table());
  const CpuidEntry reordered[] = {kLeaf1, kLeaf0, kLeaf7, kLeafB0};
  EXPECT_NE(Cpuid(reordered), Table());  // same entries, another order
  EXPECT_EQ(Cpuid(), Cpuid(std::span<const CpuidEntry>{}));
  Cpuid changed_back = Table();
  changed_back.SetApicId(9);
  changed_back.SetApicId(kLeafB0.edx);  // leaf 1's APIC ID byte was 0x07 in kLeaf1 too
  EXPECT_EQ(changed_back, Table());
}

TEST(CpuidCopyTest, ARefusedChangeLeavesCopiesEqual) {
  const CpuidEntry no_leaf1[] = {kLeaf0};
  const Cpuid original(no_leaf1);
  Cpuid copy = original;
  EXPECT_FALSE(copy.SetFeature(cpuid_feature::kX2Apic, true));
  EXPECT_FALSE(copy.SetTopology(4, 4));
  EXPECT_FALSE(copy.Remove(7, 0));
  EXPECT_EQ(copy, original);
}

TEST(CpuidCopyTest, AMovedFromTableIsEmptyAndUsableAgain) {
  Cpuid a = Table();
  Cpuid b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a, Cpuid());
  EXPECT_EQ(b, Table());
  Cpuid c;
  c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(c, Table());
  a = c;
  EXPECT_EQ(a, c);
  EXPECT_EQ(EntriesOf(a), EntriesOf(Table()));
}

}  // namespace
}  // namespace cpuid_copy_test
}  // namespace virt
