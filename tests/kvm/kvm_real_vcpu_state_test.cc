// Real /dev/kvm tests of the CPUID and MP state a VMM sets: the guest reads back what was set,
// and an application processor waits for SIPI inside Run until cancelled.
#include <gtest/gtest.h>

#include <thread>

#include "real_kvm_test.h"

namespace virt::kvm {
namespace {

using guest::GuestDriver;
using KvmRealVcpuStateTest = RealKvmTest;

struct CpuidSeen {
  uint32_t ebx = 0, ecx = 0, edx = 0;
};

// Runs a mode-5 guest after `edit` changed vCPU 0's CPUID; returns what CPUID.1 gave the guest.
CpuidSeen RunCpuidGuest(Partition& partition, const std::function<void(Cpuid&)>& edit) {
  CpuidSeen seen;
  auto driver = GuestDriver::Create(partition, guest::kModeCpuid, kRealMmioValue);
  EXPECT_TRUE(driver) << driver.error().Message();
  if (!driver) return seen;
  Vcpu& vcpu = (*driver)->vcpu();
  EXPECT_NE(vcpu.cpuid(), nullptr);
  auto cpuid = vcpu.cpuid()->GetCpuid();
  EXPECT_TRUE(cpuid) << cpuid.error().Message();
  if (!cpuid) return seen;
  edit(*cpuid);
  auto set = vcpu.cpuid()->SetCpuid(*cpuid);
  EXPECT_TRUE(set) << set.error().Message();
  Watchdog watchdog(vcpu);
  uint32_t* out[] = {&seen.ebx, &seen.ecx, &seen.edx};
  for (uint32_t* slot : out) {
    auto exit = (*driver)->RunToEvent();
    EXPECT_TRUE(exit) << exit.error().Message();
    if (!exit) return seen;
    const auto* io = std::get_if<IoExit>(&*exit);
    EXPECT_TRUE(io != nullptr && io->port == guest::kCpuidPort) << guest::Describe(*exit);
    if (io == nullptr) return seen;
    *slot = io->value();
  }
  return seen;
}

TEST_F(KvmRealVcpuStateTest, TheGuestSeesTheCpuidTheVmmSet) {
  for (bool x2apic : {false, true}) {
    SCOPED_TRACE(x2apic ? "x2apic shown" : "x2apic hidden");
    auto partition = NewPartition(/*irqchip=*/true);
    ASSERT_NE(partition, nullptr);
    const Cpuid supported = *partition->cpuid()->SupportedCpuid();
    ASSERT_TRUE(supported.Has(cpuid_feature::kX2Apic)) << "KVM reports x2APIC with its LAPIC";
    const CpuidSeen seen = RunCpuidGuest(*partition, [x2apic](Cpuid& c) {
      ASSERT_TRUE(c.SetFeature(cpuid_feature::kX2Apic, x2apic));
      c.SetApicId(0x5a);
    });
    EXPECT_EQ((seen.ecx >> 21) & 1, x2apic ? 1u : 0u);
    EXPECT_EQ(seen.ebx >> 24, 0x5au);
    // The rest of EBX (CLFLUSH size, logical count) is the table's; EDX and ECX carry bits KVM
    // computes at run time (OSXSAVE, APIC enable ...), so only the bits set here are compared.
    EXPECT_EQ(seen.ebx & 0x00ffffffu, supported.Find(1)->ebx & 0x00ffffffu);
  }
}

TEST_F(KvmRealVcpuStateTest, ApsWaitForSipiInsideRunUntilCancelled) {
  auto p = hypervisor_->CreatePartition({.vcpu_count = 2, .irqchip = true, .pit = true});
  ASSERT_TRUE(p) << p.error().Message();
  auto bsp = (*p)->CreateVcpu(0);
  auto ap = (*p)->CreateVcpu(1);
  ASSERT_TRUE(bsp && ap);
  ASSERT_NE((*ap)->mp_state(), nullptr);
  EXPECT_EQ(*(*bsp)->mp_state()->GetMpState(), MpState::kRunnable);
  EXPECT_EQ(*(*ap)->mp_state()->GetMpState(), MpState::kUninitialized);
  EXPECT_EQ((*ap)->cpuid()->GetCpuid()->ApicId(), 1u);

  // Nobody sends INIT/SIPI: Run blocks in the kernel, returning nothing, until cancelled.
  Vcpu& vcpu = **ap;
  std::optional<Result<VcpuExit>> exit;
  std::thread runner([&] { exit = vcpu.Run(); });
  vcpu.Cancel();
  runner.join();
  ASSERT_TRUE(exit.has_value());
  ASSERT_TRUE(*exit) << exit->error().Message();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(**exit)) << guest::Describe(**exit);
  EXPECT_EQ(*vcpu.mp_state()->GetMpState(), MpState::kUninitialized);

  // The VMM may also park and release a vCPU itself.
  ASSERT_TRUE(vcpu.mp_state()->SetMpState(MpState::kInitReceived));
  EXPECT_EQ(*vcpu.mp_state()->GetMpState(), MpState::kInitReceived);
}

}  // namespace
}  // namespace virt::kvm
