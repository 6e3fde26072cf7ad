// KVM vCPU and partition state against a mocked KvmIoctl: exact payloads of every state ioctl,
// the XSAVE2 size, the MSR list, events flags, refusals, and a failed restore put back.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class KvmStateTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 2, .irqchip = true, .pit = true});
    ASSERT_NE(part_, nullptr);
    auto v = part_->CreateVcpu(1);
    ASSERT_TRUE(v.has_value());
    vcpu_ = std::move(*v);
    fd_ = kVcpuFdBase + 1;
  }
  void TearDown() override {
    vcpu_.reset();
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }

  // Distinct values in every part of the fake's vCPU state.
  void PresetVcpu() {
    auto& st = fake().vcpu_state(fd_);
    for (size_t i = 0; i < st.xsave.size(); ++i) st.xsave[i] = static_cast<uint8_t>(i * 7);
    st.xcrs.nr_xcrs = 1;
    st.xcrs.xcrs[0] = {0, 0, 0x7};
    st.debug.db[0] = 0x1000, st.debug.db[3] = 0x4000, st.debug.dr6 = 0xffff0ff1;
    st.debug.dr7 = 0x403;
    for (size_t i = 0; i < sizeof st.lapic.regs; ++i) st.lapic.regs[i] = static_cast<char>(i);
    st.events.exception = {1, 14, 1, 0, 2};
    st.events.interrupt = {1, 0x41, 0, 1};
    st.events.nmi = {0, 1, 1, 0};
    st.events.sipi_vector = 0x10;
    st.events.smi.latched_init = 1;
    fake().regs(fd_).rip = 0xfff0;
    fake().regs(fd_).rax = 42;
    fake().sregs(fd_).cr0 = 0x60000010;
    for (uint32_t msr : kFakeMsrIndexList) fake().msr_values()[msr] = 0x1000 + msr;
    for (uint32_t msr : kFakeFeatureMsrs) fake().msr_values()[msr] = 0x2000 + msr;
    fake().set_mp_state(fd_, KVM_MP_STATE_HALTED);
  }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  std::unique_ptr<Vcpu> vcpu_;
  int fd_ = 0;
};

TEST_F(KvmStateTest, TheSaveableMsrsAreTheIndexListAndTheFeatureMsrsWithoutTheTsc) {
  std::vector<uint32_t> want;
  for (uint32_t m : kFakeMsrIndexList) {
    if (m != 0x10) want.push_back(m);
  }
  want.insert(want.end(), kFakeFeatureMsrs.begin(), kFakeFeatureMsrs.end());
  EXPECT_THAT(hv_->saveable_msrs(), ElementsAreArray(want));
}

TEST_F(KvmStateTest, SaveReadsEveryPartWithItsIoctl) {
  PresetVcpu();
  VcpuStateControl* control = vcpu_->state();
  ASSERT_NE(control, nullptr);
  EXPECT_EQ(control->supported_parts().size(), kVcpuRestoreOrder.size());
  EXPECT_CALL(mock(), GetXsave2(fd_, _));  // KVM_CAP_XSAVE2 said 8 KiB: the big area
  EXPECT_CALL(mock(), GetXsave(_, _)).Times(0);
  auto s = control->SaveState();
  ASSERT_TRUE(s.has_value()) << s.error().Message();
  EXPECT_EQ(s->backend, "kvm");
  EXPECT_EQ(s->parts().size(), kVcpuRestoreOrder.size());
  EXPECT_EQ(s->xsave->size(), static_cast<size_t>(kXsave2Size));
  EXPECT_EQ(*s->xsave, fake().vcpu_state(fd_).xsave);
  ASSERT_EQ(s->xcrs->size(), 1u);
  EXPECT_EQ((*s->xcrs)[0], (XcrEntry{0, 7}));
  EXPECT_EQ(s->debug_registers->db[3], 0x4000u);
  EXPECT_EQ(s->debug_registers->dr7, 0x403u);
  ASSERT_EQ(s->lapic->size(), 1024u);
  EXPECT_EQ((*s->lapic)[1023], static_cast<uint8_t>(1023 & 0xff));
  EXPECT_EQ(s->events->exception.vector, 14);
  EXPECT_TRUE(s->events->exception.injected && s->events->exception.has_error_code);
  EXPECT_EQ(s->events->exception.error_code, 2u);
  EXPECT_EQ(s->events->interrupt.vector, 0x41);
  EXPECT_EQ(s->events->interrupt.shadow, 1);
  EXPECT_TRUE(s->events->nmi.pending && s->events->nmi.masked);
  EXPECT_TRUE(s->events->smi.latched_init);
  EXPECT_EQ(s->events->sipi_vector, 0x10u);
  EXPECT_EQ(s->mp_state, MpState::kHalted);
  EXPECT_EQ(s->registers->rax, 42u);
  EXPECT_EQ(s->tsc, 0x1010u);  // MSR 0x10, read on its own
  ASSERT_EQ(s->msrs->size(), hv_->saveable_msrs().size());
  for (const MsrEntry& m : *s->msrs) EXPECT_NE(m.index, 0x10u);
  EXPECT_EQ((*s->msrs)[0], (MsrEntry{0x1b, 0x101b}));
}

TEST_F(KvmStateTest, RestoreWritesEveryPartInOrderWithExactPayloads) {
  PresetVcpu();
  auto saved = vcpu_->state()->SaveState();
  ASSERT_TRUE(saved.has_value());
  VcpuState want = *saved;
  want.registers->rip = 0x400000;
  want.mp_state = MpState::kRunnable;
  (*want.xsave)[100] ^= 0xff;
  ::testing::InSequence seq;
  // The save taken first for a rollback, then the loads in kVcpuRestoreOrder (the CPUID equal to
  // the vCPU's own is read, not written).
  EXPECT_CALL(mock(), GetCpuid2(fd_, _)).Times(::testing::AtLeast(1));
  EXPECT_CALL(mock(), SetMsrs(fd_, _)).WillOnce([this](int fd, const kvm_msrs& m) {
    EXPECT_EQ(m.nmsrs, hv_->saveable_msrs().size());
    return fake().SetMsrs(fd, m);
  });
  EXPECT_CALL(mock(), SetSregs(fd_, _));
  EXPECT_CALL(mock(), SetRegs(fd_, ::testing::Field(&kvm_regs::rip, 0x400000u)));
  EXPECT_CALL(mock(), SetXcrs(fd_, _)).WillOnce([this](int fd, const kvm_xcrs& x) {
    EXPECT_EQ(x.nr_xcrs, 1u);
    EXPECT_EQ(x.flags, 0u);
    EXPECT_EQ(x.xcrs[0].value, 7u);
    return fake().SetXcrs(fd, x);
  });
  EXPECT_CALL(mock(), SetXsave(fd_, _));
  EXPECT_CALL(mock(), SetDebugRegs(fd_, ::testing::Field(&kvm_debugregs::flags, 0u)));
  EXPECT_CALL(mock(), SetMpState(fd_, ::testing::Field(&kvm_mp_state::mp_state,
                                                       uint32_t{KVM_MP_STATE_RUNNABLE})));
  EXPECT_CALL(mock(), SetLapic(fd_, _));
  EXPECT_CALL(mock(), SetVcpuEvents(fd_, _)).WillOnce([this](int fd, const kvm_vcpu_events& e) {
    EXPECT_EQ(e.flags, uint32_t{KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                                KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM});
    EXPECT_EQ(e.exception.nr, 14);
    EXPECT_EQ(e.interrupt.nr, 0x41);
    EXPECT_EQ(e.nmi.pending, 1);
    EXPECT_EQ(e.sipi_vector, 0x10u);
    EXPECT_EQ(e.exception_has_payload, 0);
    return fake().SetVcpuEvents(fd, e);
  });
  EXPECT_CALL(mock(), SetMsrs(fd_, ::testing::Field(&kvm_msrs::nmsrs, 1u)));  // the TSC, last
  ASSERT_TRUE(vcpu_->state()->RestoreState(want));
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_EQ(fake().regs(fd_).rip, 0x400000u);
  EXPECT_EQ(fake().vcpu_state(fd_).xsave[100], static_cast<uint8_t>((100 * 7) ^ 0xff));
  EXPECT_EQ(fake().mp_state(fd_), uint32_t{KVM_MP_STATE_RUNNABLE});
  auto back = vcpu_->state()->SaveState();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, want);
}

TEST_F(KvmStateTest, WrongSizesAndPartsKvmCannotCarryAreRefused) {
  auto saved = vcpu_->state()->SaveState();
  ASSERT_TRUE(saved.has_value());
  const auto regs_before = fake().regs(fd_);
  VcpuState small = *saved;
  small.xsave->resize(4096);
  small.registers->rip = 0x1234;
  auto s = vcpu_->state()->RestoreState(small);
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().Message(), HasSubstr("restoring xsave failed"));
  EXPECT_THAT(s.error().Message(), HasSubstr("4096 bytes; this KVM takes 8192"));
  EXPECT_THAT(s.error().Message(), HasSubstr("put back"));
  EXPECT_EQ(fake().regs(fd_).rip, regs_before.rip) << "the registers restored before were put back";
  VcpuState payload = *saved;
  payload.events->exception.payload = 0xdead;
  EXPECT_THAT(vcpu_->state()->RestoreState(payload), IsErrorCode(ErrorCode::kUnavailable));
  VcpuState lapic = *saved;
  lapic.lapic->resize(4096);
  EXPECT_THAT(vcpu_->state()->RestoreState(lapic).error().Message(), HasSubstr("KVM's is 1024"));
}

TEST_F(KvmStateTest, AnMsrTheVcpuRefusesLeavesItsList) {
  fake().RefuseMsr(0x345);  // a feature MSR this vCPU does not have
  auto s = vcpu_->state()->SaveState();
  ASSERT_TRUE(s.has_value()) << s.error().Message();
  for (const MsrEntry& m : *s->msrs) EXPECT_NE(m.index, 0x345u);
  EXPECT_EQ(s->msrs->size(), hv_->saveable_msrs().size() - 1);
  // The next save does not ask for it again.
  const size_t calls = fake().msr_calls().size();
  ASSERT_TRUE(vcpu_->state()->SaveState());
  EXPECT_EQ(fake().msr_calls().size(), calls + 2);  // the list and the TSC, no retry
}

TEST_F(KvmStateTest, WithoutXsave2TheLegacyFourKilobyteAreaIsUsed) {
  vcpu_.reset();
  part_.reset();
  fake().SetCapability(KVM_CAP_XSAVE2, 0);
  part_ = NewPartition(*hv_, {.vcpu_count = 1, .irqchip = true});
  auto v = part_->CreateVcpu(0);
  ASSERT_TRUE(v.has_value());
  vcpu_ = std::move(*v);
  EXPECT_CALL(mock(), GetXsave(kVcpuFdBase, _));
  EXPECT_CALL(mock(), GetXsave2(_, _)).Times(0);
  auto s = vcpu_->state()->SaveState();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->xsave->size(), 4096u);
}

TEST_F(KvmStateTest, ACpuidChangeAfterTheFirstRunIsRefusedButTheSameTableIsAccepted) {
  auto saved = vcpu_->state()->SaveState();
  ASSERT_TRUE(saved.has_value());
  ASSERT_TRUE(vcpu_->Run());  // the fake halts
  EXPECT_TRUE(vcpu_->state()->RestoreState(*saved)) << "its own state back";
  VcpuState other = *saved;
  ASSERT_TRUE(other.cpuid->SetFeature(cpuid_feature::kX2Apic, false));
  auto s = vcpu_->state()->RestoreState(other);
  EXPECT_THAT(s, IsErrorCode(ErrorCode::kFailedPrecondition));
  EXPECT_THAT(s.error().Message(), HasSubstr("restoring cpuid failed"));
}

TEST_F(KvmStateTest, SaveStateIntoReusesThePartsStorageAndSeesEveryChange) {
  PresetVcpu();
  VcpuStateControl* control = vcpu_->state();
  VcpuState kept;
  ASSERT_TRUE(control->SaveStateInto(kept));
  auto fresh = control->SaveState();
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(kept, *fresh);
  const uint8_t* xsave = kept.xsave->data();
  const uint8_t* lapic = kept.lapic->data();
  const MsrEntry* msrs = kept.msrs->data();
  const CpuidEntry* cpuid = kept.cpuid->entries().data();

  // The vCPU changes: registers, XSAVE bytes, and its CPUID table (not run yet, so settable).
  fake().regs(fd_).rax = 43;
  fake().vcpu_state(fd_).xsave[5] ^= 0xff;
  fake().msr_values()[0x1b] = 0xfee00900;
  Cpuid other = *kept.cpuid;
  ASSERT_TRUE(other.SetFeature(cpuid_feature::kX2Apic, !other.Has(cpuid_feature::kX2Apic)));
  ASSERT_TRUE(vcpu_->cpuid()->SetCpuid(other));
  ASSERT_TRUE(control->SaveStateInto(kept));
  EXPECT_EQ(kept.registers->rax, 43u);
  EXPECT_EQ(*kept.xsave, fake().vcpu_state(fd_).xsave);
  EXPECT_EQ((*kept.msrs)[0], (MsrEntry{0x1b, 0xfee00900}));
  EXPECT_EQ(*kept.cpuid, other) << "a changed table is converted again, not served from before";
  EXPECT_EQ(kept.xsave->data(), xsave);
  EXPECT_EQ(kept.lapic->data(), lapic);
  EXPECT_EQ(kept.msrs->data(), msrs);
  EXPECT_EQ(kept.cpuid->entries().data(), cpuid);

  // Restoring the first state compares the vCPU's table with it, sees the difference and sets
  // it; restoring the same state again finds the table equal and sets nothing.
  EXPECT_CALL(mock(), SetCpuid2(fd_, _)).Times(1);
  ASSERT_TRUE(control->RestoreState(*fresh, RestoreMode::kStopOnFailure));
  EXPECT_EQ(vcpu_->cpuid()->GetCpuid().value(), *fresh->cpuid);
  ASSERT_TRUE(control->RestoreState(*fresh, RestoreMode::kStopOnFailure));
  EXPECT_EQ(fake().regs(fd_).rax, 42u);
}

TEST_F(KvmStateTest, AFailedSaveIntoAKeptStateEmptiesItAndNamesThePart) {
  VcpuState kept;
  ASSERT_TRUE(vcpu_->state()->SaveStateInto(kept));
  EXPECT_CALL(mock(), GetLapic(fd_, _))
      .WillOnce(::testing::Return(Error::Errno("KVM_GET_LAPIC", EIO)))
      .WillRepeatedly(::testing::DoDefault());
  auto s = vcpu_->state()->SaveStateInto(kept);
  EXPECT_THAT(s, IsErrorCode(ErrorCode::kNative));
  EXPECT_THAT(s.error().Message(), HasSubstr("saving lapic"));
  EXPECT_TRUE(kept.parts().empty());
  EXPECT_TRUE(kept.backend.empty());
  ASSERT_TRUE(vcpu_->state()->SaveStateInto(kept)) << "usable again";
  EXPECT_EQ(kept.parts().size(), kVcpuRestoreOrder.size());
}

// The vCPU's one KVM_GET_CPUID2 buffer is shared by VcpuCpuid (any one thread) and the state
// calls (the vCPU's thread): a VMM thread reading the CPUID while the vCPU thread saves its
// state gets whole tables (the TSan preset checks the lock).
TEST_F(KvmStateTest, CpuidReadsOnAnotherThreadDuringSavesGetWholeTables) {
  auto expected = vcpu_->cpuid()->GetCpuid();
  ASSERT_TRUE(expected.has_value());
  constexpr int kRounds = 200;
  std::atomic<int> mismatches{0};
  std::thread reader([&] {
    for (int i = 0; i < kRounds; ++i) {
      auto c = vcpu_->cpuid()->GetCpuid();
      if (!c || *c != *expected) mismatches.fetch_add(1);
    }
  });
  VcpuState kept;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(vcpu_->state()->SaveStateInto(kept));
    if (*kept.cpuid != *expected) mismatches.fetch_add(1);
  }
  reader.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(KvmStateTest, PartitionStateCoversClockIrqchipPitAndRoutes) {
  PartitionStateControl* control = part_->state();
  ASSERT_NE(control, nullptr);
  EXPECT_EQ(control->supported_parts().size(), 4u);
  fake().clock_state().clock = 123456789;
  fake().clock_state().flags = KVM_CLOCK_TSC_STABLE;
  fake().irqchip_state(2).chip.ioapic.base_address = 0xfec00000;
  fake().pit_state().flags = 1;
  auto route = part_->irqfd()->NewRoute();
  ASSERT_TRUE(route.has_value());
  ASSERT_TRUE((*route)->SetMsi(MsiMessage::Fixed(1, 0x44)));
  auto masked = part_->irqfd()->NewRoute();
  ASSERT_TRUE(masked.has_value());

  auto s = control->SaveState();
  ASSERT_TRUE(s.has_value()) << s.error().Message();
  EXPECT_EQ(s->clock, (ClockState{123456789, KVM_CLOCK_TSC_STABLE}));
  ASSERT_EQ(s->irqchip->size(), 3 * sizeof(kvm_irqchip));
  kvm_irqchip ioapic{};
  std::memcpy(&ioapic, s->irqchip->data() + 2 * sizeof ioapic, sizeof ioapic);
  EXPECT_EQ(ioapic.chip_id, uint32_t{KVM_IRQCHIP_IOAPIC});
  EXPECT_EQ(ioapic.chip.ioapic.base_address, 0xfec00000u);
  ASSERT_EQ(s->pit->size(), sizeof(kvm_pit_state2));
  ASSERT_EQ(s->routes->size(), 2u);
  EXPECT_EQ((*s->routes)[0], (RouteState{(*route)->gsi(), MsiMessage::Fixed(1, 0x44)}));
  EXPECT_EQ((*s->routes)[1], (RouteState{(*masked)->gsi(), std::nullopt}));

  // Restored into a fresh partition: the same chips, clock and routes, in one push.
  route->reset();
  masked->reset();
  vcpu_.reset();
  part_.reset();
  part_ = NewPartition(*hv_, {.vcpu_count = 2, .irqchip = true, .pit = true});
  fake().clock_state() = {};
  const uint64_t pushes = fake().pushes();
  EXPECT_CALL(mock(), SetClock(kVmFd, ::testing::Field(&kvm_clock_data::clock, 123456789u)));
  auto routes = part_->state()->RestoreState(*s);
  ASSERT_TRUE(routes.has_value()) << routes.error().Message();
  EXPECT_EQ(fake().pushes(), pushes + 1);
  ASSERT_EQ(routes->size(), 2u);
  EXPECT_EQ((*routes)[0]->gsi(), (*s->routes)[0].gsi);
  EXPECT_EQ((*routes)[0]->msi(), MsiMessage::Fixed(1, 0x44));
  EXPECT_EQ((*routes)[1]->msi(), std::nullopt);
  EXPECT_TRUE(fake().irqfd_assigned((*routes)[0]->event().native_handle(), (*routes)[0]->gsi()));
  EXPECT_EQ(fake().irqchip_state(2).chip.ioapic.base_address, 0xfec00000u);
  EXPECT_EQ(fake().pit_state().flags, 1u);
}

TEST_F(KvmStateTest, PartitionStateRefusalsChangeNothing) {
  auto s = part_->state()->SaveState();
  ASSERT_TRUE(s.has_value());
  auto p = hv_->CreatePartition({.vcpu_count = 1, .irqchip = false});
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)->state()->supported_parts().size(), 1u);  // the clock only
  auto r = (*p)->state()->RestoreState(*s);
  EXPECT_THAT(r, IsErrorCode(ErrorCode::kUnavailable));
  EXPECT_THAT(r.error().Message(), HasSubstr("no irqchip"));
  PartitionState bad = *s;
  bad.pit->pop_back();
  EXPECT_THAT(part_->state()->RestoreState(bad), IsErrorCode(ErrorCode::kInvalidArgument));
  PartitionState other = *s;
  other.backend = "whp";
  EXPECT_THAT(part_->state()->RestoreState(other).error().Message(), HasSubstr("backend whp"));
}

TEST_F(KvmStateTest, ASerialisedSnapshotRestoresToTheSameState) {
  PresetVcpu();
  auto v = vcpu_->state()->SaveState();
  auto p = part_->state()->SaveState();
  ASSERT_TRUE(v && p);
  const auto vbytes = SerializeVcpuState(*v);
  const auto pbytes = SerializePartitionState(*p);
  auto v2 = ParseVcpuState(vbytes, "kvm");
  auto p2 = ParsePartitionState(pbytes, "kvm");
  ASSERT_TRUE(v2 && p2);
  EXPECT_EQ(*v2, *v);
  EXPECT_EQ(*p2, *p);
  EXPECT_THAT(ParseVcpuState(vbytes, "mshv"), IsErrorCode(ErrorCode::kInvalidArgument));
}

}  // namespace
}  // namespace virt::kvm::test
