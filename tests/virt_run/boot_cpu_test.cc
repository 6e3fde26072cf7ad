// The multiboot entry state of the boot vCPU, as values and as set on a (fake) vCPU.
#include "virt_run/boot_cpu.h"

#include <gtest/gtest.h>

#include "fake_backend.h"

namespace virt::run {
namespace {

constexpr BootCpuState kState{0x400123, 0x7fff000, 0x7fff060, 31, 0x7fff080, 0x67};

TEST(BootCpuTest, SpecialRegistersAreFlatProtectedModeWithABusyTss) {
  SpecialRegisters in;
  in.apic_base = 0xFEE00900;  // BSP, enabled: must survive
  in.cr4 = 0x20;
  in.efer = 0x500;
  const SpecialRegisters s = BootSpecialRegisters(in, kState);
  EXPECT_EQ(s.cr0, 0x11u);
  EXPECT_EQ(s.cr3, 0u);
  EXPECT_EQ(s.cr4, 0u);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(s.apic_base, 0xFEE00900u);
  EXPECT_EQ(s.cs, (SegmentRegister{0, 0xFFFFFFFF, 0x08, 0xB, 1, 0, 1, 1, 0, 1, 0, false}));
  const SegmentRegister data{0, 0xFFFFFFFF, 0x10, 0x3, 1, 0, 1, 1, 0, 1, 0, false};
  EXPECT_EQ(s.ds, data);
  EXPECT_EQ(s.es, data);
  EXPECT_EQ(s.fs, data);
  EXPECT_EQ(s.gs, data);
  EXPECT_EQ(s.ss, data);
  EXPECT_EQ(s.tr, (SegmentRegister{0x7fff080, 0x67, 0x18, 0xB, 1, 0, 0, 0, 0, 0, 0, false}));
  EXPECT_TRUE(s.ldt.unusable);
  EXPECT_EQ(s.gdt, (TableRegister{0x7fff060, 31}));
  EXPECT_EQ(s.idt, (TableRegister{0, 0}));
}

TEST(BootCpuTest, RegistersCarryTheMagicAndTheInfoAddress) {
  Registers expected;
  expected.rax = 0x2BADB002;
  expected.rbx = 0x7fff000;
  expected.rip = 0x400123;
  expected.rflags = 0x2;
  EXPECT_EQ(BootRegisters(kState), expected);
}

TEST(BootCpuTest, EnterMultibootSetsBothSets) {
  testing::FakeVcpu vcpu(0, {});
  vcpu.sregs_.apic_base = 0xFEE00900;
  ASSERT_TRUE(EnterMultiboot(vcpu, kState));
  EXPECT_TRUE(vcpu.regs_set_);
  EXPECT_TRUE(vcpu.sregs_set_);
  EXPECT_EQ(vcpu.regs_, BootRegisters(kState));
  SpecialRegisters in;
  in.apic_base = 0xFEE00900;
  EXPECT_EQ(vcpu.sregs_, BootSpecialRegisters(in, kState));
}

}  // namespace
}  // namespace virt::run
