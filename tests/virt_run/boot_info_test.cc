// The multiboot information area byte by byte: info fields, memory map, command line, module,
// GDT and TSS; where it sits and why kvm-unit-tests' allocator never reaches it.
#include "virt_run/boot_info.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "virt_run/elf32.h"

namespace virt::run {
namespace {

uint32_t At32(const BootInfo& info, uint64_t gpa) {
  return LoadLe32(info.bytes.data() + (gpa - info.area.begin));
}
uint64_t At64(const BootInfo& info, uint64_t gpa) {
  return At32(info, gpa) | (uint64_t{At32(info, gpa + 4)} << 32);
}
std::string CString(const BootInfo& info, uint64_t gpa) {
  return std::string(reinterpret_cast<const char*>(info.bytes.data() + (gpa - info.area.begin)));
}

struct MmapEntry {
  uint32_t size;
  uint64_t base, length;
  uint32_t type;
  bool operator==(const MmapEntry&) const = default;
};

// Walks the map as kvm-unit-tests' find_highmem does: entry size at offset 0, next = + size + 4.
std::vector<MmapEntry> Mmap(const BootInfo& info) {
  const uint32_t addr = At32(info, info.info_address + 48);
  const uint32_t length = At32(info, info.info_address + 44);
  std::vector<MmapEntry> out;
  for (uint64_t p = addr; p < uint64_t{addr} + length;) {
    MmapEntry e{At32(info, p), At64(info, p + 4), At64(info, p + 12), At32(info, p + 20)};
    out.push_back(e);
    p += e.size + 4;
  }
  return out;
}

TEST(BootInfoTest, InfoFieldsCmdlineAndModule) {
  const GuestLayout layout = *GuestLayout::ForMemory(128);
  const std::vector<uint8_t> env = {'A', '=', '1', '\n', 'B', '=', '2', '\n'};
  auto info = BuildBootInfo(layout, "x86/apic.flat -smp 2", BootModule{env, "env.txt"});
  ASSERT_TRUE(info) << info.error();

  // Two pages (the info page, the module page) at the very top of low RAM.
  EXPECT_EQ(info->area, (AddressRange{0x8000000 - 0x2000, 0x8000000}));
  EXPECT_EQ(info->bytes.size(), 0x2000u);
  EXPECT_EQ(info->info_address, info->area.begin);

  const uint32_t mbi = info->info_address;
  EXPECT_EQ(At32(*info, mbi + 0), 0x1u | 0x4u | 0x8u | 0x40u);  // mem, cmdline, mods, mmap
  EXPECT_EQ(At32(*info, mbi + 4), 640u);                        // mem_lower: below 0xa0000
  EXPECT_EQ(At32(*info, mbi + 8), (info->area.begin - 0x100000) / 1024);  // mem_upper
  EXPECT_EQ(CString(*info, At32(*info, mbi + 16)), "x86/apic.flat -smp 2");
  EXPECT_EQ(At32(*info, mbi + 20), 1u);  // mods_count

  const uint32_t mod = At32(*info, mbi + 24);
  const uint32_t start = At32(*info, mod), end = At32(*info, mod + 4);
  EXPECT_EQ(start % 4096, 0u);
  EXPECT_EQ(end - start, env.size());
  EXPECT_EQ(std::vector<uint8_t>(info->bytes.begin() + (start - info->area.begin),
                                 info->bytes.begin() + (end - info->area.begin)),
            env);
  EXPECT_EQ(CString(*info, At32(*info, mod + 8)), "env.txt");
  ASSERT_TRUE(info->module);
  EXPECT_EQ(*info->module, (AddressRange{start, end}));
}

TEST(BootInfoTest, MemoryMapCoversRamAndReservesTheHoleAndTheArea) {
  const GuestLayout layout = *GuestLayout::ForMemory(128);
  auto info = BuildBootInfo(layout, "k ", std::nullopt);
  ASSERT_TRUE(info) << info.error();
  const uint64_t area = info->area.begin;
  EXPECT_EQ(Mmap(*info), (std::vector<MmapEntry>{
                             {20, 0, 0xA0000, 1},
                             {20, 0xA0000, 0x60000, 2},
                             {20, 0x100000, area - 0x100000, 1},
                             {20, area, 0x8000000 - area, 2},
                         }));
  EXPECT_EQ(info->mmap_length, 4u * 24);
  EXPECT_EQ(info->area.size(), 0x1000u);  // no module: one page
  EXPECT_EQ(At32(*info, info->info_address + 20), 0u);
}

TEST(BootInfoTest, RamAbove3GiBStartsAt4GiB) {
  const GuestLayout layout = *GuestLayout::ForMemory(4096);
  EXPECT_EQ(layout.low, (AddressRange{0, 0xC0000000}));
  EXPECT_EQ(layout.high, (AddressRange{1ull << 32, (1ull << 32) + (1ull << 30)}));
  auto info = BuildBootInfo(layout, "k ", std::nullopt);
  ASSERT_TRUE(info) << info.error();
  const std::vector<MmapEntry> map = Mmap(*info);
  ASSERT_EQ(map.size(), 5u);
  EXPECT_EQ(map[3], (MmapEntry{20, 0xC0000000 - 0x1000, 0x1000, 2}));
  EXPECT_EQ(map[4], (MmapEntry{20, 1ull << 32, 1ull << 30, 1}));
}

TEST(BootInfoTest, KvmUnitTestsFreeRangeEndsBelowTheArea) {
  // lib/x86/setup.c: phys_alloc_init(edata, mem_upper * 1024 - edata). That end (which omits
  // the 1 MiB mem_upper counts from) and a spec-conforming 1 MiB + mem_upper KiB both stop at
  // or below the area.
  for (uint64_t mib : {2u, 64u, 128u, 3072u, 8192u}) {
    const GuestLayout layout = *GuestLayout::ForMemory(mib);
    auto info = BuildBootInfo(layout, "kernel some args", std::nullopt);
    ASSERT_TRUE(info) << info.error();
    const uint64_t upper = At32(*info, info->info_address + 8);
    EXPECT_LE(upper * 1024, info->area.begin) << mib;
    EXPECT_EQ(0x100000 + upper * 1024, info->area.begin) << mib;
  }
}

TEST(BootInfoTest, GdtAndBusyTss) {
  const GuestLayout layout = *GuestLayout::ForMemory(128);
  auto info = BuildBootInfo(layout, "k ", std::nullopt);
  ASSERT_TRUE(info) << info.error();
  EXPECT_EQ(info->gdt_limit, 31);
  EXPECT_EQ(At64(*info, info->gdt_address), 0u);
  EXPECT_EQ(At64(*info, info->gdt_address + 0x08), 0x00CF9B000000FFFFull);
  EXPECT_EQ(At64(*info, info->gdt_address + 0x10), 0x00CF93000000FFFFull);
  const uint64_t tss = At64(*info, info->gdt_address + 0x18);
  EXPECT_EQ(tss & 0xFFFF, 0x67u);                       // limit
  EXPECT_EQ((tss >> 40) & 0xFF, 0x8Bu);                 // present, busy 32-bit TSS
  const uint64_t base = ((tss >> 16) & 0xFFFFFF) | ((tss >> 56) << 24);
  EXPECT_EQ(base, info->tss_address);
  EXPECT_EQ(info->tss_limit, 0x67);
  EXPECT_EQ(At32(*info, info->tss_address + 100) >> 16, 104u);  // no I/O bitmap
  // Nothing overlaps: info, GDT, TSS, map, strings.
  EXPECT_GE(info->gdt_address, info->info_address + multiboot::kInfoSize);
  EXPECT_GE(info->tss_address, info->gdt_address + 32);
  EXPECT_GE(info->mmap_address, info->tss_address + 104);
  EXPECT_GE(info->cmdline_address, info->mmap_address + 5 * 24 + 16);
}

TEST(BootInfoTest, ModuleOf16KiBFitsOneMoreByteDoesNot) {
  const GuestLayout layout = *GuestLayout::ForMemory(128);
  std::vector<uint8_t> env(16384, 'x');
  auto ok = BuildBootInfo(layout, "k ", BootModule{env, "env"});
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->module->size(), 16384u);
  env.push_back('y');
  auto big = BuildBootInfo(layout, "k ", BootModule{env, "env"});
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().find("16385 bytes"), std::string::npos) << big.error();
  EXPECT_NE(big.error().find("at most 16384"), std::string::npos) << big.error();
}

TEST(BootInfoTest, EmptyModuleHasEqualStartAndEnd) {
  const GuestLayout layout = *GuestLayout::ForMemory(128);
  auto info = BuildBootInfo(layout, "k ", BootModule{{}, "empty"});
  ASSERT_TRUE(info) << info.error();
  EXPECT_EQ(info->module->size(), 0u);
  EXPECT_EQ(At32(*info, info->info_address + 20), 1u);
}

TEST(BootInfoTest, AreaThatWouldReachBelow1MiBIsRefused) {
  const GuestLayout layout = *GuestLayout::ForMemory(2);
  auto info = BuildBootInfo(layout, std::string(2 << 20, 'a'), std::nullopt);
  ASSERT_FALSE(info);
  EXPECT_NE(info.error().find("does not fit in guest RAM above 1 MiB"), std::string::npos)
      << info.error();
}

TEST(GuestLayoutTest, Limits) {
  EXPECT_FALSE(GuestLayout::ForMemory(1));
  EXPECT_FALSE(GuestLayout::ForMemory(0));
  auto two = GuestLayout::ForMemory(2);
  ASSERT_TRUE(two);
  EXPECT_EQ(two->low, (AddressRange{0, 2 << 20}));
  EXPECT_EQ(two->high.size(), 0u);
  auto exactly = GuestLayout::ForMemory(3072);
  ASSERT_TRUE(exactly);
  EXPECT_EQ(exactly->low.end, 0xC0000000u);
  EXPECT_EQ(exactly->high.size(), 0u);
}

}  // namespace
}  // namespace virt::run
