// MshvVcpuState and MshvPartitionState against the fake: exact MSHV calls, round trips into
// another vCPU or partition, rollback of a restore failing half way, refusals, the byte form.
#include <cstring>
#include <set>

#include "mshv_msr_names.h"
#include "mshv_test_fixture.h"
#include "virt/mshv/mshv_irqfd_route.h"

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::AllOf;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::Pointee;

class MshvStateTest : public MshvTest {
 protected:
  void SetUp() override {
    SetUpVcpu();
    auto ap = partition_->CreateVcpu(1);
    ASSERT_TRUE(ap.has_value());
    ap_ = std::move(*ap);
    // The partition's maximum XSAVE data size, which MSHV_GET_VP_STATE reports for every VP.
    for (uint32_t i = 0; i < 2; ++i) fake_.vp(i).xsave.assign(8192, 0);
  }
  void TearDown() override {
    vcpu_.reset();
    ap_.reset();
    MshvTest::TearDown();
  }
  // Gives VP `index` a distinct value in every register a state holds, and patterned XSAVE
  // and LAPIC pages.
  void Populate(uint32_t index, uint64_t seed) {
    FakeMshv::Vp& vp = fake_.vp(index);
    const uint32_t names[] = {
        HV_X64_REGISTER_RAX,  HV_X64_REGISTER_RBX, HV_X64_REGISTER_RIP, HV_X64_REGISTER_R15,
        HV_X64_REGISTER_CR3,  HV_X64_REGISTER_XFEM, HV_X64_REGISTER_DR0, HV_X64_REGISTER_DR3,
        HV_X64_REGISTER_DR6,  HV_X64_REGISTER_DR7, HV_X64_REGISTER_TSC, HV_X64_REGISTER_LSTAR,
        HV_X64_REGISTER_STAR, HV_X64_REGISTER_PAT, HV_X64_REGISTER_KERNEL_GS_BASE,
        HV_X64_REGISTER_SYSENTER_EIP, HV_X64_REGISTER_TSC_AUX};
    for (size_t i = 0; i < std::size(names); ++i) vp.registers[names[i]] = {seed + i, 0};
    vp.registers[HV_X64_REGISTER_RFLAGS] = {0x202, 0};
    vp.registers[HV_X64_REGISTER_CS] = {0, 0x9B00'0000'FFFFull};  // base 0, limit, attributes
    vp.registers[HV_REGISTER_INTERNAL_ACTIVITY_STATE] = {0, 0};
    vp.registers[HV_REGISTER_PENDING_INTERRUPTION] = {0x00300001, 0};  // interrupt 0x30
    vp.registers[HV_REGISTER_INTERRUPT_STATE] = {2, 0};                // NMI masked
    for (size_t i = 0; i < vp.xsave.size(); ++i) vp.xsave[i] = static_cast<uint8_t>(seed + i * 7);
    for (size_t i = 0; i < vp.lapic.size(); ++i) vp.lapic[i] = static_cast<uint8_t>(seed ^ i);
  }
  VcpuState Save(Vcpu& v) {
    auto s = v.state()->SaveState();
    EXPECT_TRUE(s.has_value()) << s.error().Message();
    return s ? *s : VcpuState{};
  }
  std::unique_ptr<Vcpu> ap_;
};

// A MSHV_GET/SET_VP_STATE argument of `type` over a page-aligned `size`-byte buffer.
auto VpStateIs(uint8_t type, uint32_t size) {
  return AllOf(Field(&mshv_get_set_vp_state::type, type),
               Field(&mshv_get_set_vp_state::buf_sz, size),
               Field(&mshv_get_set_vp_state::buf_ptr,
                     ::testing::Truly([](uint64_t p) { return p != 0 && p % 4096 == 0; })));
}

TEST(MshvMsrNames, EachSaveableMsrHasItsOwnRegisterName) {
  std::set<uint32_t> msrs, names;
  for (const MsrRegisterName& m : kSaveableMsrs) {
    EXPECT_TRUE(msrs.insert(m.msr).second) << std::hex << m.msr;
    EXPECT_TRUE(names.insert(m.name).second) << std::hex << m.name;
    EXPECT_EQ(MsrRegister(m.msr), m.name);
  }
  EXPECT_EQ(MsrRegister(0x20F), 0x00080047u);  // IA32_MTRR_PHYSMASK7
  EXPECT_EQ(MsrRegister(0x26F), 0x0008007Au);  // IA32_MTRR_FIX4K_F8000
  EXPECT_EQ(MsrRegister(0x259), 0x00080072u);  // IA32_MTRR_FIX16K_A0000
  EXPECT_EQ(MsrRegister(0x10), 0x00080000u);   // the TSC: its own part, still a name
  EXPECT_FALSE(MsrRegister(0x48).has_value());
}

TEST_F(MshvStateTest, EveryPartIsSupportedWithTheLapic) {
  const auto parts = vcpu_->state()->supported_parts();
  EXPECT_EQ(std::vector<VcpuStatePart>(parts.begin(), parts.end()),
            std::vector<VcpuStatePart>(kVcpuRestoreOrder.begin(), kVcpuRestoreOrder.end()));
}

TEST_F(MshvStateTest, WithoutTheLapicTheLapicPartIsUnavailable) {
  auto h = OpenHypervisor();
  auto p = NewPartition(*h, PartitionConfig{1, false});
  auto v = p->CreateVcpu(0);
  ASSERT_TRUE(v.has_value());
  const auto parts = (*v)->state()->supported_parts();
  EXPECT_EQ(std::count(parts.begin(), parts.end(), VcpuStatePart::kLapic), 0);
  EXPECT_EQ(parts.size(), 10u);
  const VcpuStatePart lapic[] = {VcpuStatePart::kLapic};
  auto s = (*v)->state()->SaveState(lapic);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().detail, HasSubstr("lapic"));
}

TEST_F(MshvStateTest, SaveReadsEachPartFromItsMshvCall) {
  Populate(0, 0x1000);
  VcpuState s = Save(*vcpu_);
  EXPECT_EQ(s.backend, "mshv");
  EXPECT_EQ(s.parts().size(), 11u);
  ASSERT_TRUE(s.registers && s.xcrs && s.debug_registers && s.tsc && s.msrs && s.events);
  EXPECT_EQ(s.registers->rax, 0x1000u);
  EXPECT_EQ(s.registers->rip, 0x1002u);
  EXPECT_EQ(*s.xcrs, (std::vector<XcrEntry>{{0, 0x1005}}));
  EXPECT_EQ(*s.debug_registers, (DebugRegisters{{0x1006, 0, 0, 0x1007}, 0x1008, 0x1009}));
  EXPECT_EQ(*s.tsc, 0x100Au);
  ASSERT_EQ(s.msrs->size(), kSaveableMsrs.size());
  auto msr = [&](uint32_t index) {
    for (const MsrEntry& m : *s.msrs) {
      if (m.index == index) return m.value;
    }
    ADD_FAILURE() << "no MSR " << index;
    return uint64_t{0};
  };
  EXPECT_EQ(msr(0xC0000082), 0x100Bu);  // LSTAR
  EXPECT_EQ(msr(0xC0000081), 0x100Cu);  // STAR
  EXPECT_EQ(msr(0x277), 0x100Du);       // PAT
  EXPECT_EQ(msr(0xC0000102), 0x100Eu);  // KERNEL_GS_BASE
  EXPECT_EQ(msr(0x176), 0x100Fu);       // SYSENTER_EIP
  EXPECT_EQ(msr(0xC0000103), 0x1010u);  // TSC_AUX
  EXPECT_TRUE(s.events->interrupt.injected);
  EXPECT_EQ(s.events->interrupt.vector, 0x30);
  EXPECT_TRUE(s.events->nmi.masked);
  EXPECT_EQ(s.mp_state, MpState::kRunnable);
  EXPECT_EQ(*s.xsave, fake_.vp(0).xsave);  // the size the kernel reported, 8 KiB
  EXPECT_EQ(*s.lapic, fake_.vp(0).lapic);
  EXPECT_EQ(s.special_registers->cs.limit, 0xFFFFu);
}

TEST_F(MshvStateTest, XsaveAndLapicGoThroughPageAlignedBuffersOfTheirAbiSizes) {
  Populate(0, 1);
  VcpuState s = Save(*vcpu_);
  EXPECT_CALL(*mock_, SetVpState(_, VpStateIs(MSHV_VP_STATE_XSAVE, 4 * 4096)));
  EXPECT_CALL(*mock_, SetVpState(_, VpStateIs(MSHV_VP_STATE_LAPIC, 4096)));
  EXPECT_CALL(*mock_, GetVpState(_, Pointee(VpStateIs(MSHV_VP_STATE_XSAVE, 4 * 4096))));
  EXPECT_CALL(*mock_, GetVpState(_, Pointee(VpStateIs(MSHV_VP_STATE_LAPIC, 4096))));
  VcpuState only;
  only.backend = "mshv";
  only.xsave = s.xsave;
  only.lapic = s.lapic;
  ASSERT_TRUE(vcpu_->state()->RestoreState(only));
  Verified();
}

TEST_F(MshvStateTest, EventsAreOneHypercallOfTheThreeEventRegisters) {
  const VcpuStatePart events[] = {VcpuStatePart::kEvents};
  fake_.hvcalls().clear();
  ASSERT_TRUE(vcpu_->state()->SaveState(events).has_value());
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& get = fake_.hvcalls()[0];
  EXPECT_EQ(get.call.code, HVCALL_GET_VP_REGISTERS);
  EXPECT_EQ(get.call.reps, 3);
  std::vector<uint8_t> want(16 + 12, 0);
  PutLe(want.data(), 16, 0x00010002, 4);
  PutLe(want.data(), 20, 0x00010003, 4);
  PutLe(want.data(), 24, 0x00010004, 4);
  EXPECT_EQ(get.input, want);

  VcpuState s;
  s.backend = "mshv";
  s.events = VcpuEvents{};
  s.events->exception.pending = true;
  s.events->exception.vector = 14;
  s.events->exception.payload = 0x5000;
  fake_.hvcalls().clear();
  ASSERT_TRUE(vcpu_->state()->RestoreState(s));
  // The save taken first (for a rollback), then the one SET.
  ASSERT_EQ(fake_.hvcalls().size(), 2u);
  const HvcallRecord& set = fake_.hvcalls()[1];
  EXPECT_EQ(set.call.code, HVCALL_SET_VP_REGISTERS);
  EXPECT_EQ(set.call.reps, 3);
  EXPECT_EQ(fake_.vp(0).registers[HV_REGISTER_PENDING_EVENT0].low, 0x000E0001u);
  EXPECT_EQ(fake_.vp(0).registers[HV_REGISTER_PENDING_EVENT0].high, 0x5000u);
  EXPECT_EQ(fake_.vp(0).registers[HV_REGISTER_PENDING_INTERRUPTION].low, 0u);
}

TEST_F(MshvStateTest, RestoreIntoAnotherVcpuMakesItsStateEqual) {
  Populate(0, 0x40);
  const VcpuState s = Save(*vcpu_);
  ASSERT_EQ(*ap_->mp_state()->GetMpState(), MpState::kUninitialized);
  Status restored = ap_->state()->RestoreState(s);
  ASSERT_TRUE(restored) << restored.error().Message();
  VcpuState copy = Save(*ap_);
  EXPECT_EQ(copy, s);
  EXPECT_EQ(fake_.vp(1).lapic, fake_.vp(0).lapic);
  EXPECT_EQ(fake_.vp(1).registers[HV_X64_REGISTER_TSC].low, 0x4Au);
}

TEST_F(MshvStateTest, AVcpuThatRanTakesItsOwnStateBack) {
  fake_.vp(0).messages.push_back(PlainMessage(HVMSG_X64_HALT, 40));
  ASSERT_TRUE(vcpu_->Run().has_value());  // SetCpuid is refused from now on
  const VcpuState s = Save(*vcpu_);
  Status restored = vcpu_->state()->RestoreState(s);
  ASSERT_TRUE(restored) << restored.error().Message();
  for (const HvcallRecord& r : fake_.hvcalls()) EXPECT_NE(r.call.code, HVCALL_INSTALL_INTERCEPT);
}

TEST_F(MshvStateTest, AnotherBackendsStateIsRefusedBeforeAnyCall) {
  VcpuState s = Save(*vcpu_);
  s.backend = "kvm";
  EXPECT_CALL(*mock_, RootHvcall(_, _)).Times(0);
  EXPECT_CALL(*mock_, SetVpState(_, _)).Times(0);
  EXPECT_CALL(*mock_, GetVpState(_, _)).Times(0);
  Status r = vcpu_->state()->RestoreState(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(r.error().detail, HasSubstr("kvm"));
  Verified();
  // The same refusal for the byte form: a KVM-named state does not parse as an MSHV one.
  EXPECT_FALSE(ParseVcpuState(SerializeVcpuState(s), "mshv").has_value());
}

TEST_F(MshvStateTest, ARestoreFailingHalfWayPutsTheEarlierPartsBack) {
  Populate(0, 0x10);
  const VcpuState before = Save(*vcpu_);
  VcpuState changed = before;
  changed.registers->rax = 0xAAAA;
  changed.debug_registers->dr7 = 0x401;
  (*changed.xsave)[100] ^= 0xFF;
  (*changed.lapic)[0x80] ^= 0xFF;
  changed.tsc = 999;
  // The restore's own save reads XSAVE and LAPIC (2 GETs); the loads are XSAVE then LAPIC:
  // the LAPIC load (the second SET) fails, after the registers, XSAVE and DRs were loaded.
  fake_.FailNext("SetVpState", 1, EIO);
  Status r = vcpu_->state()->RestoreState(changed);
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "MSHV_SET_VP_STATE");
  EXPECT_EQ(r.error().native_code, EIO);
  EXPECT_THAT(r.error().detail, HasSubstr("restoring lapic failed"));
  EXPECT_THAT(r.error().detail, HasSubstr("put back"));
  EXPECT_EQ(Save(*vcpu_), before);
  EXPECT_EQ(fake_.vp(0).registers[HV_X64_REGISTER_RAX].low, 0x10u);
}

TEST_F(MshvStateTest, EventsWithoutAnMshvFormFailTheirPartAndChangeNothing) {
  Populate(0, 0x20);
  const VcpuState before = Save(*vcpu_);
  VcpuState smm = before;
  smm.registers->rbx = 7;
  smm.events->smi.smm = true;
  Status r = vcpu_->state()->RestoreState(smm);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().detail, HasSubstr("SMM"));
  EXPECT_EQ(Save(*vcpu_), before);
}

TEST_F(MshvStateTest, BadPartSizesAndXcrsAreRefused) {
  VcpuState s;
  s.backend = "mshv";
  s.lapic = std::vector<uint8_t>(1024, 0);  // KVM's size
  EXPECT_EQ(vcpu_->state()->RestoreState(s).error().code, ErrorCode::kInvalidArgument);
  s = VcpuState{};
  s.backend = "mshv";
  s.xsave = std::vector<uint8_t>(5 * 4096, 0);
  EXPECT_EQ(vcpu_->state()->RestoreState(s).error().code, ErrorCode::kInvalidArgument);
  s = VcpuState{};
  s.backend = "mshv";
  s.xcrs = std::vector<XcrEntry>{{1, 1}};
  EXPECT_EQ(vcpu_->state()->RestoreState(s).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(MshvStateTest, AnMshvStateSerialisesAndParsesBackEqual) {
  Populate(0, 0x77);
  const VcpuState s = Save(*vcpu_);
  auto parsed = ParseVcpuState(SerializeVcpuState(s), "mshv");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().Message();
  EXPECT_EQ(*parsed, s);
  ASSERT_TRUE(ap_->state()->RestoreState(*parsed));
  EXPECT_EQ(Save(*ap_), s);
}

// ---- partition state ----------------------------------------------------------------------

class MshvPartitionStateTest : public MshvTest {
 protected:
  void SetUp() override {
    hypervisor_ = OpenHypervisor();
    partition_ = NewPartition(*hypervisor_, PartitionConfig{1, true});
  }
  PartitionStateControl& state() { return *partition_->state(); }
  FakeMshv::Partition& kernel() { return fake_.only_partition(); }
};

TEST_F(MshvPartitionStateTest, PartsAreTheClockAndTheRoutes) {
  const auto parts = state().supported_parts();
  EXPECT_EQ(std::vector<PartitionStatePart>(parts.begin(), parts.end()),
            (std::vector<PartitionStatePart>{PartitionStatePart::kClock,
                                             PartitionStatePart::kRoutes}));
  auto h = OpenHypervisor();
  auto plain = NewPartition(*h, PartitionConfig{1, false});
  EXPECT_EQ(plain->state()->supported_parts().size(), 1u);
}

TEST_F(MshvPartitionStateTest, TheClockIsTheReferenceTimeIn100NsUnits) {
  kernel().properties[HV_PARTITION_PROPERTY_REFERENCE_TIME] = 123456;
  const PartitionStatePart clock[] = {PartitionStatePart::kClock};
  fake_.hvcalls().clear();
  auto s = state().SaveState(clock);
  ASSERT_TRUE(s.has_value()) << s.error().Message();
  EXPECT_EQ(s->clock, (ClockState{12345600, 0}));
  ASSERT_EQ(fake_.hvcalls().size(), 1u);
  const HvcallRecord& r = fake_.hvcalls()[0];
  EXPECT_EQ(r.fd, partition_fd());
  EXPECT_EQ(r.call.code, 0x0044);
  EXPECT_EQ(r.call.out_sz, 8);
  std::vector<uint8_t> want(16, 0);
  PutLe(want.data(), 8, 0x00030005, 4);
  EXPECT_EQ(r.input, want);
}

TEST_F(MshvPartitionStateTest, RestoringTheClockFreezesWritesAndThawsTheTime) {
  PartitionState s;
  s.backend = "mshv";
  s.clock = ClockState{5'000'000'000, 0};
  fake_.hvcalls().clear();
  auto r = state().RestoreState(s);
  ASSERT_TRUE(r.has_value()) << r.error().Message();
  EXPECT_TRUE(r->empty());
  using W = std::pair<uint32_t, uint64_t>;
  EXPECT_EQ(kernel().property_writes,
            (std::vector<W>{{HV_PARTITION_PROPERTY_TIME_FREEZE, 1},
                            {HV_PARTITION_PROPERTY_REFERENCE_TIME, 50'000'000},
                            {HV_PARTITION_PROPERTY_TIME_FREEZE, 0}}));
  ASSERT_EQ(fake_.hvcalls().size(), 3u);
  std::vector<uint8_t> want(24, 0);
  PutLe(want.data(), 8, 0x00030005, 4);
  PutLe(want.data(), 16, 50'000'000, 8);
  EXPECT_EQ(fake_.hvcalls()[1].input, want);
  EXPECT_EQ(fake_.hvcalls()[1].call.code, 0x0045);
  EXPECT_EQ(fake_.hvcalls()[1].fd, partition_fd());
}

TEST_F(MshvPartitionStateTest, AFailedClockWriteStillThawsTheTime) {
  PartitionState s;
  s.backend = "mshv";
  s.clock = ClockState{100, 0};
  fake_.FailNext("RootHvcall", 1, EIO);
  auto r = state().RestoreState(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "HVCALL_SET_PARTITION_PROPERTY");
  EXPECT_THAT(r.error().detail, HasSubstr("restoring clock failed"));
  EXPECT_EQ(kernel().properties[HV_PARTITION_PROPERTY_TIME_FREEZE], 0u);
}

TEST_F(MshvPartitionStateTest, IrqchipAndPitAreUnavailableAndRefusedBeforeAnyCall) {
  const PartitionStatePart chip[] = {PartitionStatePart::kIrqchip};
  auto saved = state().SaveState(chip);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(saved.error().detail, HasSubstr("PIC"));
  PartitionState s;
  s.backend = "mshv";
  s.clock = ClockState{100, 0};
  s.pit = std::vector<uint8_t>(112, 0);
  EXPECT_CALL(*mock_, RootHvcall(_, _)).Times(0);
  auto r = state().RestoreState(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(r.error().detail, HasSubstr("PIT"));
  s.pit.reset();
  s.backend = "kvm";
  r = state().RestoreState(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  Verified();
}

TEST_F(MshvPartitionStateTest, RoutesComeBackOnTheirGsisWithTheirMsis) {
  IrqFd& irqfd = *partition_->irqfd();
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < 3; ++i) routes.push_back(std::move(*irqfd.NewRoute()));
  ASSERT_TRUE(routes[0]->SetMsi(MsiMessage::Fixed(0, 0x41)));
  ASSERT_TRUE(routes[2]->SetMsi(MsiMessage::Fixed(1, 0x43)));
  kernel().properties[HV_PARTITION_PROPERTY_REFERENCE_TIME] = 77;
  auto s = state().SaveState();
  ASSERT_TRUE(s.has_value()) << s.error().Message();
  ASSERT_TRUE(s->routes.has_value());
  ASSERT_EQ(s->routes->size(), 3u);
  const auto table = kernel().table;
  routes.clear();
  EXPECT_TRUE(kernel().irqfds.empty());

  auto parsed = ParsePartitionState(SerializePartitionState(*s), "mshv");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().Message();
  EXPECT_EQ(*parsed, *s);
  auto back = state().RestoreState(*parsed);
  ASSERT_TRUE(back.has_value()) << back.error().Message();
  ASSERT_EQ(back->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*back)[i]->gsi(), (*s->routes)[i].gsi);
    EXPECT_EQ((*back)[i]->msi(), (*s->routes)[i].msi);
  }
  EXPECT_EQ(kernel().table.size(), 2u);
  for (auto& [gsi, entry] : kernel().table) EXPECT_EQ(entry.data, table.at(gsi).data);
  EXPECT_EQ(kernel().irqfds.size(), 2u);
  EXPECT_EQ(kernel().properties[HV_PARTITION_PROPERTY_REFERENCE_TIME], 77u);
}

}  // namespace
}  // namespace virt::mshv::test
