// Failure injection: a whole partition life cycle with each MshvIoctl call made to fail once,
// checking that nothing leaks (fds, eventfds, GSIs, ioeventfds), no ordering rule is broken, and
// a state restore failing half way leaves the state it found.
#include <dirent.h>

#include <cstdlib>
#include <set>

#include "mshv_test_fixture.h"
#include "virt/mshv/mshv_irqfd_route.h"

namespace virt::mshv::test {
namespace {

using ::testing::IsEmpty;

// The store that rings `m`: its address, its width (8 for any length) and its data match.
GuestWrite RingOf(const DoorbellMatch& m) {
  return {m.address, m.length == kDoorbellAnyLength ? 8u : m.length, m.data.value_or(0)};
}

// Runs every backend path once. Any step may fail (that is the point); later steps go on with
// whatever exists. Checks the invariants that must hold whatever failed.
void Scenario(FakeMshv& fake, std::shared_ptr<MshvIoctl> ioctl) {
  auto h = MshvHypervisor::Create(ioctl);
  if (!h) return;
  {
    PartitionConfig with_pit{2, true};
    with_pit.pit = true;
    auto refused = (*h)->CreatePartition(with_pit);  // refused before any ioctl
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  }
  auto p = (*h)->CreatePartition(PartitionConfig{2, true});
  if (!p) return;
  Partition& partition = **p;

  alignas(4096) static uint8_t memory[6 * 4096];
  (void)partition.MapMemory({0x100000, 2 * 4096, memory, MemoryFlags::kNone});
  (void)partition.MapMemory({0x200000, 4096, memory + 2 * 4096, MemoryFlags::kReadOnly});
  (void)partition.UnmapMemory(0x100000, 2 * 4096);

  // Dirty log: a read returns exactly the pages written and clears them; a failed read clears
  // nothing.
  if (partition.MapMemory({0x300000, 2 * 4096, memory + 4 * 4096, MemoryFlags::kDirtyLog})) {
    DirtyLog& log = *partition.dirty_log();
    if (log.Enable()) {
      std::set<uint64_t>& dirty = fake.partitions().begin()->second.dirty_pfns;
      dirty = {0x301};
      auto bits = log.ReadAndClear(0x300000, 2 * 4096);
      if (bits) {
        EXPECT_EQ(*bits, std::vector<uint64_t>{2});
        EXPECT_TRUE(dirty.empty());
      } else {
        EXPECT_STREQ(bits.error().operation, "MSHV_GET_GPAP_ACCESS_BITMAP");
        EXPECT_EQ(dirty, std::set<uint64_t>{0x301});
      }
    }
  }

  if (auto v = partition.CreateVcpu(0)) {
    Vcpu& vcpu = **v;
    auto* vp = [&]() -> FakeMshv::Vp* {
      for (auto& [fd, vp] : fake.vps()) return &vp;
      return nullptr;
    }();
    InterceptHeader out;
    out.access_type = 1, out.instruction_length = 1;
    InterceptHeader in = out;
    in.access_type = 0;
    InterceptHeader mem_w;
    mem_w.access_type = 1;
    InterceptHeader mem_r;
    InterceptHeader cpuid_at;
    cpuid_at.access_type = 2, cpuid_at.instruction_length = 2;
    vp->messages = {IoPortMessage(out, 0x3F8, 1, 0x41), IoPortMessage(in, 0x60, 1, 0),
                    MemoryMessage(HVMSG_UNMAPPED_GPA, mem_w, 0xFEB00000, {0x89, 0x08}),
                    MemoryMessage(HVMSG_UNMAPPED_GPA, mem_r, 0xFEB00000, {0x8A, 0x10}),
                    CpuidMessage(cpuid_at, 1, 0, {1, 2, 0xFFFFFFFF, 4}),
                    PlainMessage(HVMSG_X64_HALT, 40)};

    // CPUID: read the hypervisor's table, hide x2APIC, install it. A failed SetCpuid must leave
    // the vCPU answering as before (no table: the hypervisor's values).
    const auto before = vcpu.cpuid()->GetCpuid();
    Cpuid table = before ? *before : Cpuid(std::vector<CpuidEntry>{{1, 0, 0, 1, 2, 3, 4}});
    (void)table.SetFeature(cpuid_feature::kX2Apic, false);
    const bool set = vcpu.cpuid()->SetCpuid(table).has_value();
    if (!set && before) {
      auto after = vcpu.cpuid()->GetCpuid();
      if (after) {
        EXPECT_EQ(*after, *before);
      }
    }
    if (set) {
      auto after = vcpu.cpuid()->GetCpuid();
      ASSERT_TRUE(after.has_value());
      EXPECT_EQ(*after, table);
    }
    (void)partition.cpuid()->SupportedCpuid();
    (void)partition.cpuid()->DefaultCpuid(1);
    if (auto state = vcpu.mp_state()->GetMpState()) {
      EXPECT_EQ(*state, MpState::kRunnable);
    }
    (void)vcpu.mp_state()->SetMpState(MpState::kRunnable);

    for (int i = 0; i < 6; ++i) {
      auto exit = vcpu.Run();
      if (!exit) continue;
      if (auto* io = std::get_if<IoExit>(&*exit); io && !io->is_write) {
        const uint8_t b[] = {0x7F};
        (void)vcpu.CompleteIoIn(b);
      }
      if (auto* m = std::get_if<MmioExit>(&*exit); m && !m->is_write) {
        (void)vcpu.CompleteMmioRead(0x12);
      }
    }
    if (auto regs = vcpu.GetRegisters()) (void)vcpu.SetRegisters(*regs);
    if (auto sregs = vcpu.GetSpecialRegisters()) (void)vcpu.SetSpecialRegisters(*sregs);
    if (auto fpu = vcpu.GetFpu()) (void)vcpu.SetFpu(*fpu);
    MsrEntry msrs[] = {{0x10, 0}, {0xC0000080, 0}};
    (void)vcpu.GetMsrs(msrs);

    // Whole-vCPU state: a save, then a restore of a changed copy. A restore that fails puts
    // back whatever it had loaded, so a later save (the one failure is spent by then) equals the
    // first; one that succeeds leaves exactly the changed copy.
    if (auto before = vcpu.state()->SaveState()) {
      VcpuState changed = *before;
      changed.registers->rax ^= 0x5A5A;
      changed.debug_registers->db[0] = 0x1234;
      (*changed.xsave)[24] ^= 1;
      (*changed.lapic)[0x80] ^= 0xFF;
      *changed.tsc += 1000;
      const Status restored = vcpu.state()->RestoreState(changed);
      auto after = vcpu.state()->SaveState();
      if (after) {
        EXPECT_EQ(*after, restored ? changed : *before)
            << (restored ? std::string("restored") : restored.error().Message());
      }
    }
    (void)partition.RequestMsi(MsiMessage::Fixed(0, 0x30));
    if (set && vp->registers.count(HV_X64_REGISTER_RCX)) {
      // The CPUID intercept, if answered, came from the table: x2APIC hidden.
      const uint64_t rcx = vp->registers[HV_X64_REGISTER_RCX].low;
      if (rcx != 0) {
        EXPECT_EQ(rcx & (1u << 21), 0u);
      }
    }
  }
  if (auto ap = partition.CreateVcpu(1)) {
    if (auto state = (*ap)->mp_state()->GetMpState()) {
      EXPECT_EQ(*state, MpState::kUninitialized);
    }
    (void)(*ap)->mp_state()->SetMpState(MpState::kHalted);
  }

  // Doorbells: three registrations and a refused port; one released, one dropped. Whatever
  // failed, the kernel holds exactly the live registrations (each rung by its own store) plus
  // those whose deassign failed, which the kernel keeps until the partition fd closes.
  std::vector<Error> reported;
  std::vector<std::unique_ptr<DoorbellRegistration>> bells;
  {
    Doorbells& doorbells = *partition.doorbells();
    doorbells.SetErrorHandler([&reported](const Error& e) { reported.push_back(e); });
    const DoorbellMatch matches[] = {
        {DoorbellSpace::kMmio, 0xfeb00000, 4, {}},
        {DoorbellSpace::kMmio, 0xfeb01000, 2, 1},
        {DoorbellSpace::kMmio, 0xfeb02000, kDoorbellAnyLength, {}},
    };
    for (const DoorbellMatch& m : matches) {
      auto r = doorbells.Register(m);
      if (r) {
        bells.push_back(std::move(*r));
      } else {
        EXPECT_STREQ(r.error().operation, "MSHV_IOEVENTFD");
      }
    }
    ASSERT_FALSE(doorbells.Register({DoorbellSpace::kPio, 0xc050, 2, {}}).has_value());
    const int pfd = fake.partitions().begin()->first;
    const auto& kernel_bells = fake.partitions().begin()->second.ioeventfds;
    ASSERT_EQ(kernel_bells.size(), bells.size());
    for (const auto& b : bells) {
      EXPECT_TRUE(fake.GuestMmioWrite(pfd, RingOf(b->match())));
      auto rung = b->event().TryWait();
      ASSERT_TRUE(rung.has_value());
      EXPECT_EQ(*rung, 1u);
    }
    size_t failed_deassigns = 0;
    if (!bells.empty()) {
      if (Status s = bells[0]->Release(); !s) {
        EXPECT_STREQ(s.error().operation, "MSHV_IOEVENTFD");
        ++failed_deassigns;
      }
    }
    if (bells.size() > 1) {
      const size_t before = reported.size();
      bells[1].reset();
      failed_deassigns += reported.size() - before;
    }
    for (const Error& e : reported) EXPECT_STREQ(e.operation, "MSHV_IOEVENTFD");
    const size_t live = bells.size() > 2 ? bells.size() - 2 : 0;
    EXPECT_EQ(kernel_bells.size(), live + failed_deassigns);
    for (size_t i = 2; i < bells.size(); ++i) {
      EXPECT_TRUE(fake.GuestMmioWrite(pfd, RingOf(bells[i]->match())));
    }
  }

  IrqFd& irqfd = *partition.irqfd();
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  for (int i = 0; i < 5; ++i) {
    if (auto r = irqfd.NewRoute()) routes.push_back(std::move(*r));
  }
  const MsiMessage level{0xFEE00000, 0xC033};
  for (size_t i = 0; i < routes.size(); ++i) {
    (void)routes[i]->SetMsi(i == 1 ? level : MsiMessage::Fixed(0, static_cast<uint8_t>(0x40 + i)));
  }
  {
    RouteBatch batch(irqfd);
    for (auto& r : routes) (void)r->SetMsi(MsiMessage::Fixed(1, 0x50));
    if (!routes.empty()) routes.back().reset();
    (void)batch.Commit();
  }
  if (routes.size() > 2) {
    (void)routes[2]->ClearMsi();
    (void)routes[1]->SetMsi(level);                     // edge -> level re-registration
    (void)routes[1]->SetMsi(MsiMessage::Fixed(0, 0x60));  // and back
  }

  // Whatever failed, a live route reports an MSI exactly when the kernel has its irqfd, that MSI
  // is what the kernel table holds, and only GSIs whose entry is in the table have an irqfd. (A
  // masked route whose removal push failed leaves a harmless entry with no irqfd behind.)
  FakeMshv::Partition& kernel = fake.partitions().begin()->second;
  auto check_routes = [&] {
    for (auto& r : routes) {
      if (!r) continue;
      auto entry = kernel.table.find(r->gsi());
      const std::optional<MsiMessage> msi = r->msi();
      ASSERT_EQ(msi.has_value(), kernel.irqfds.count(r->gsi()) > 0) << "GSI " << r->gsi();
      if (msi) {
        ASSERT_NE(entry, kernel.table.end()) << "GSI " << r->gsi();
        EXPECT_EQ(msi->data, entry->second.data);
      }
    }
    for (auto& [gsi, irqfd_args] : kernel.irqfds) {
      EXPECT_TRUE(kernel.table.count(gsi)) << "irqfd without entry, GSI " << gsi;
    }
  };
  check_routes();
  if (::testing::Test::HasFatalFailure()) return;

  // Partition state: the clock and the routes saved, the routes dropped and recreated from the
  // snapshot on their GSIs (a failure drops those made so far), the clock written back.
  kernel.properties[HV_PARTITION_PROPERTY_REFERENCE_TIME] = 4242;
  if (auto saved = partition.state()->SaveState()) {
    EXPECT_EQ(saved->clock->ns, 424200u);
    routes.clear();
    auto back = partition.state()->RestoreState(*saved);
    if (back) {
      ASSERT_EQ(back->size(), saved->routes->size());
      for (size_t i = 0; i < back->size(); ++i) {
        EXPECT_EQ((*back)[i]->gsi(), (*saved->routes)[i].gsi);
        EXPECT_EQ((*back)[i]->msi(), (*saved->routes)[i].msi);
      }
      routes = std::move(*back);
      EXPECT_EQ(kernel.properties[HV_PARTITION_PROPERTY_TIME_FREEZE], 0u);
      EXPECT_EQ(kernel.properties[HV_PARTITION_PROPERTY_REFERENCE_TIME], 4242u);
    }
    check_routes();
    if (::testing::Test::HasFatalFailure()) return;
  }
  if (!routes.empty()) (void)routes[0]->Release();  // may park its GSI until the next push

  // No GSI leaked: with injection off, drop everything, push once, then all 2024 are free.
  fake.ClearFailure();
  routes.clear();
  {
    auto flush = irqfd.NewRoute();
    ASSERT_TRUE(flush.has_value());
    ASSERT_TRUE((*flush)->SetMsi(MsiMessage::Fixed(0, 0x70)));
  }
  std::vector<std::unique_ptr<IrqFdRoute>> all;
  for (;;) {
    auto r = irqfd.NewRoute();
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kExhausted);
      break;
    }
    all.push_back(std::move(*r));
  }
  EXPECT_EQ(all.size(), kUsableGsis);
  all.resize(1);
  p->reset();  // a route outliving its partition
  if (!all.empty()) {
    EXPECT_EQ(all[0]->SetMsi(MsiMessage::Fixed(0, 0x30)).error().code, ErrorCode::kPartitionGone);
  }
  for (size_t i = 2; i < bells.size(); ++i) {  // doorbells outliving their partition
    EXPECT_EQ(bells[i]->Release().error().code, ErrorCode::kPartitionGone);
  }
}

class MshvFailureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(MshvFailureTest, EachCallFailingOnceLeaksNothing) {
  const std::string method = GetParam();
  int occurrences = 0;
  {
    FakeMshv dry;
    Scenario(dry, std::shared_ptr<MshvIoctl>(&dry, [](MshvIoctl*) {}));
    ASSERT_THAT(dry.violations(), IsEmpty());
    ASSERT_TRUE(dry.open_fds().empty());
    occurrences = dry.calls(method);
  }
  ASSERT_GT(occurrences, 0) << method << " is never called by the scenario";
  for (int nth = 0; nth < occurrences; ++nth) {
    SCOPED_TRACE(method + " call #" + std::to_string(nth) + " of " +
                 std::to_string(occurrences) + " fails");
    const int fds_before = OpenFdCount();
    FakeMshv fake;
    fake.FailNext(method, nth, EIO, method == "RootHvcall" ? 0x000B : 0);
    Scenario(fake, std::shared_ptr<MshvIoctl>(&fake, [](MshvIoctl*) {}));
    EXPECT_THAT(fake.violations(), IsEmpty());
    EXPECT_TRUE(fake.open_fds().empty()) << "an MSHV fd leaked";
    EXPECT_EQ(OpenFdCount(), fds_before) << "an eventfd leaked";
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// A hypercall that needs memory (EAGAIN + HV_STATUS_INSUFFICIENT_MEMORY after the kernel's
// deposit) is made again: whichever one it is, the scenario ends exactly as without it, with
// that one hypercall issued twice.
TEST(MshvDepositTest, EachHypercallNeedingADepositIsRetriedTransparently) {
  FakeMshv dry;
  Scenario(dry, std::shared_ptr<MshvIoctl>(&dry, [](MshvIoctl*) {}));
  std::vector<uint16_t> dry_codes;
  for (const HvcallRecord& r : dry.hvcalls()) dry_codes.push_back(r.call.code);
  ASSERT_FALSE(dry_codes.empty());
  for (size_t nth = 0; nth < dry_codes.size(); ++nth) {
    SCOPED_TRACE("hypercall #" + std::to_string(nth) + " (code " +
                 std::to_string(dry_codes[nth]) + ") needs a deposit");
    FakeMshv fake;
    fake.FailNext("RootHvcall", static_cast<int>(nth), EAGAIN, HV_STATUS_INSUFFICIENT_MEMORY);
    Scenario(fake, std::shared_ptr<MshvIoctl>(&fake, [](MshvIoctl*) {}));
    EXPECT_THAT(fake.violations(), IsEmpty());
    EXPECT_EQ(fake.log(), dry.log());
    std::vector<uint16_t> codes;
    for (const HvcallRecord& r : fake.hvcalls()) codes.push_back(r.call.code);
    std::vector<uint16_t> want = dry_codes;
    want.insert(want.begin() + static_cast<std::ptrdiff_t>(nth), dry_codes[nth]);
    EXPECT_EQ(codes, want);
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryIoctl, MshvFailureTest,
                         ::testing::Values("Open", "Close", "CreatePartition",
                                           "InitializePartition", "CreateVp", "SetGuestMemory",
                                           "Irqfd", "Ioeventfd", "SetMsiRouting", "RootHvcall",
                                           "RunVp", "GetVpState", "SetVpState",
                                           "GetGpapAccessBitmap"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace virt::mshv::test
