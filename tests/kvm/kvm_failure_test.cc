// Every KvmIoctl call of each KVM backend operation made to fail once: the error names the ioctl, nothing leaks, GSIs and routing tables stay as the kernel has them.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <ostream>
#include <set>

namespace virt::kvm::test {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

enum class Scenario {
  kCreateHypervisor,
  kCreatePartition,
  kMapMemory,
  kCreateVcpu,
  kSetMsiNewRoute,
  kRetarget,
  kClearMsi,
  kDropRoute,
  kBatchCommit,
  kSetCpuid,
  kGetCpuid,
  kMpState,
  kSetLineLevel,
  kNewLineRoute,
  kDropLineRoute,
  kRegisterDoorbell,
  kDropDoorbell,
  kSaveVcpuState,
  kRestoreVcpuState,
  kSavePartitionState,
  kRestorePartitionState,
  kReadDirtyLog,
};

constexpr Scenario kScenarios[] = {
    Scenario::kCreateHypervisor, Scenario::kCreatePartition, Scenario::kMapMemory,
    Scenario::kCreateVcpu,       Scenario::kSetMsiNewRoute,  Scenario::kRetarget,
    Scenario::kClearMsi,         Scenario::kDropRoute,       Scenario::kBatchCommit,
    Scenario::kSetCpuid,         Scenario::kGetCpuid,        Scenario::kMpState,
    Scenario::kSetLineLevel,     Scenario::kNewLineRoute,    Scenario::kDropLineRoute,
    Scenario::kRegisterDoorbell, Scenario::kDropDoorbell,     Scenario::kSaveVcpuState,
    Scenario::kRestoreVcpuState, Scenario::kSavePartitionState, Scenario::kRestorePartitionState,
    Scenario::kReadDirtyLog,
};

const char* Name(Scenario s) {
  switch (s) {
    case Scenario::kCreateHypervisor: return "CreateHypervisor";
    case Scenario::kCreatePartition: return "CreatePartition";
    case Scenario::kMapMemory: return "MapMemory";
    case Scenario::kCreateVcpu: return "CreateVcpu";
    case Scenario::kSetMsiNewRoute: return "SetMsiNewRoute";
    case Scenario::kRetarget: return "Retarget";
    case Scenario::kClearMsi: return "ClearMsi";
    case Scenario::kDropRoute: return "DropRoute";
    case Scenario::kBatchCommit: return "BatchCommit";
    case Scenario::kSetCpuid: return "SetCpuid";
    case Scenario::kGetCpuid: return "GetCpuid";
    case Scenario::kMpState: return "MpState";
    case Scenario::kSetLineLevel: return "SetLineLevel";
    case Scenario::kNewLineRoute: return "NewLineRoute";
    case Scenario::kDropLineRoute: return "DropLineRoute";
    case Scenario::kRegisterDoorbell: return "RegisterDoorbell";
    case Scenario::kDropDoorbell: return "DropDoorbell";
    case Scenario::kSaveVcpuState: return "SaveVcpuState";
    case Scenario::kRestoreVcpuState: return "RestoreVcpuState";
    case Scenario::kSavePartitionState: return "SavePartitionState";
    case Scenario::kRestorePartitionState: return "RestorePartitionState";
    case Scenario::kReadDirtyLog: return "ReadDirtyLog";
  }
  return "?";
}

bool UsesRoutes(Scenario s) {
  return s >= Scenario::kSetMsiNewRoute && s <= Scenario::kBatchCommit;
}
bool IsTeardown(Scenario s) {
  return s == Scenario::kDropRoute || s == Scenario::kDropLineRoute ||
         s == Scenario::kDropDoorbell;
}
// Whether the operation can simply be made again after it failed (a dropped route is gone; the
// routes a partition restore made hold their GSIs).
bool Retryable(Scenario s) { return !IsTeardown(s) && s != Scenario::kRestorePartitionState; }
bool UsesVcpu(Scenario s) {
  return (s >= Scenario::kSetCpuid && s <= Scenario::kMpState) ||
         s == Scenario::kSaveVcpuState || s == Scenario::kRestoreVcpuState;
}

constexpr int kBatchRoutes = 10;
constexpr PartitionConfig kConfig{.vcpu_count = 2, .irqchip = true, .pit = true};
const MemoryRegion kRegionA{0x0, 0x10000, reinterpret_cast<void*>(0x7f0000000000), {}};
const MemoryRegion kRegionB{0x100000, 0x4000, reinterpret_cast<void*>(0x7f0000100000), {}};
const MsiMessage kMsiA = MsiMessage::Fixed(0, 0x30);
const MsiMessage kMsiB = MsiMessage::Fixed(1, 0x31);
const MsiMessage kMsiB2 = MsiMessage::Fixed(2, 0x32);
const MsiMessage kProbeMsi = MsiMessage::Fixed(7, 0x77);
MsiMessage BatchMsi(int i) { return MsiMessage::Fixed(static_cast<uint8_t>(i), 0x40); }
constexpr DoorbellMatch kDoorbell{DoorbellSpace::kMmio, 0xfeb00000, 4, 2};
const MemoryRegion kDirtyRegion{0x400000, 0x100000, reinterpret_cast<void*>(0x7f0000400000),
                                MemoryFlags::kDirtyLog};

// One run of a scenario on its own FakeKvm: the setup (never made to fail), the operation under
// test, and what they left behind.
class World {
 public:
  explicit World(Scenario scenario) : scenario_(scenario) {}
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  FakeKvmState& fake() { return *kvm.state; }
  IrqFd* irqfd() { return part ? part->irqfd() : nullptr; }

  ::testing::AssertionResult Setup() {
    if (scenario_ == Scenario::kCreateHypervisor) return ::testing::AssertionSuccess();
    auto h = KvmHypervisor::Create(kvm.mock);
    if (!h) return ::testing::AssertionFailure() << h.error().Message();
    hv = std::move(*h);
    if (scenario_ == Scenario::kCreatePartition) return ::testing::AssertionSuccess();
    auto p = hv->CreatePartition(kConfig);
    if (!p) return ::testing::AssertionFailure() << p.error().Message();
    part = std::move(*p);
    irqfd()->SetErrorHandler([this](const Error& e) { reported.push_back(e); });
    part->irq_lines()->SetErrorHandler([this](const Error& e) { reported.push_back(e); });
    part->doorbells()->SetErrorHandler([this](const Error& e) { reported.push_back(e); });
    if (scenario_ == Scenario::kRestorePartitionState) {
      auto s = part->state()->SaveState();
      if (!s) return ::testing::AssertionFailure() << s.error().Message();
      wanted_partition = *s;
      wanted_partition.clock->ns = 987654321;
      wanted_partition.routes = std::vector<RouteState>{{24, kMsiA}, {25, std::nullopt}};
    }
    if (scenario_ == Scenario::kReadDirtyLog) {
      if (Status s = part->MapMemory(kDirtyRegion); !s) {
        return ::testing::AssertionFailure() << s.error().Message();
      }
      const uint32_t slot = fake().memory_calls().back().slot;
      fake().MarkDirty(slot, 3);
      fake().MarkDirty(slot, 200);
    }
    if (scenario_ == Scenario::kDropDoorbell) {
      auto r = part->doorbells()->Register(kDoorbell);
      if (!r) return ::testing::AssertionFailure() << r.error().Message();
      doorbells.push_back(std::move(*r));
    }
    if (UsesVcpu(scenario_)) {
      auto v = part->CreateVcpu(1);
      if (!v) return ::testing::AssertionFailure() << v.error().Message();
      vcpus.push_back(std::move(*v));
    }
    if (scenario_ == Scenario::kRestoreVcpuState) {
      auto before = vcpus[0]->state()->SaveState();
      if (!before) return ::testing::AssertionFailure() << before.error().Message();
      saved_vcpu = *before;
      wanted_vcpu = *before;
      wanted_vcpu.registers->rip = 0x123456;
      wanted_vcpu.mp_state = MpState::kHalted;
      (*wanted_vcpu.xsave)[512] = 0x5a;
      (*wanted_vcpu.lapic)[0x80] = 0x20;
      wanted_vcpu.events->nmi.pending = true;
      wanted_vcpu.tsc = 0x77777777;
      wanted_vcpu.debug_registers->db[0] = 0xabc;
      (*wanted_vcpu.msrs)[0].value ^= 1;
      wanted_vcpu.xcrs = std::vector<XcrEntry>{{0, 3}};
    }
    if (scenario_ == Scenario::kDropLineRoute) {
      auto r = part->irq_lines()->NewLineRoute(5, LineTrigger::kLevelResample);
      if (!r) return ::testing::AssertionFailure() << r.error().Message();
      line_routes.push_back(std::move(*r));
    }
    switch (scenario_) {
      case Scenario::kMapMemory:
        if (Status s = part->MapMemory(kRegionA); !s) {
          return ::testing::AssertionFailure() << s.error().Message();
        }
        break;
      case Scenario::kSetMsiNewRoute:
      case Scenario::kRetarget:
      case Scenario::kClearMsi:
      case Scenario::kDropRoute:
      case Scenario::kBatchCommit: {
        // routes[0] is an armed bystander; the others are the subjects.
        const int n = scenario_ == Scenario::kBatchCommit ? 1 + kBatchRoutes : 2;
        for (int i = 0; i < n; ++i) {
          auto r = irqfd()->NewRoute();
          if (!r) return ::testing::AssertionFailure() << r.error().Message();
          routes.push_back(std::move(*r));
        }
        if (Status s = routes[0]->SetMsi(kMsiA); !s) {
          return ::testing::AssertionFailure() << s.error().Message();
        }
        const bool b_armed = scenario_ == Scenario::kRetarget ||
                             scenario_ == Scenario::kClearMsi || scenario_ == Scenario::kDropRoute;
        if (b_armed) {
          if (Status s = routes[1]->SetMsi(kMsiB); !s) {
            return ::testing::AssertionFailure() << s.error().Message();
          }
        }
        break;
      }
      default:
        break;
    }
    return ::testing::AssertionSuccess();
  }

  // The operation under test. A teardown has no return value: its outcome is what the error
  // handler received.
  Status Act() {
    switch (scenario_) {
      case Scenario::kCreateHypervisor: {
        auto h = KvmHypervisor::Create(kvm.mock);
        if (!h) return h.error();
        hv = std::move(*h);
        return Ok();
      }
      case Scenario::kCreatePartition: {
        auto p = hv->CreatePartition(kConfig);
        if (!p) return p.error();
        part = std::move(*p);
        return Ok();
      }
      case Scenario::kMapMemory:
        return part->MapMemory(kRegionB);
      case Scenario::kCreateVcpu: {
        auto v = part->CreateVcpu(1);
        if (!v) return v.error();
        vcpus.push_back(std::move(*v));
        return Ok();
      }
      case Scenario::kSetMsiNewRoute:
        return routes[1]->SetMsi(kMsiB);
      case Scenario::kRetarget:
        return routes[1]->SetMsi(kMsiB2);
      case Scenario::kClearMsi:
        return routes[1]->ClearMsi();
      case Scenario::kDropRoute: {
        const int fd = routes[1]->event().native_handle();
        dropped.insert(routes[1]->gsi());
        const size_t before = reported.size();
        routes.erase(routes.begin() + 1);
        fake().EventClosed(fd);  // KVM releases an irqfd whose eventfd was closed
        if (reported.size() > before) return reported[before];
        return Ok();
      }
      case Scenario::kBatchCommit: {
        RouteBatch batch(*irqfd());
        for (int i = 1; i <= kBatchRoutes; ++i) {
          if (Status s = routes[i]->SetMsi(BatchMsi(i)); !s) return s;
        }
        return batch.Commit();
      }
      case Scenario::kSetCpuid: {
        Cpuid cpuid = *part->cpuid()->DefaultCpuid(1);
        if (Status s = cpuid.SetFeature(cpuid_feature::kX2Apic, false); !s) return s;
        return vcpus[0]->cpuid()->SetCpuid(cpuid);
      }
      case Scenario::kGetCpuid: {
        auto got = vcpus[0]->cpuid()->GetCpuid();
        if (!got) return got.error();
        return Ok();
      }
      case Scenario::kMpState: {
        auto state = vcpus[0]->mp_state()->GetMpState();
        if (!state) return state.error();
        return vcpus[0]->mp_state()->SetMpState(MpState::kRunnable);
      }
      case Scenario::kSetLineLevel:
        return part->irq_lines()->SetLevel(3, true);
      case Scenario::kNewLineRoute: {
        auto r = part->irq_lines()->NewLineRoute(4, LineTrigger::kLevelResample);
        if (!r) return r.error();
        line_routes.push_back(std::move(*r));
        return Ok();
      }
      case Scenario::kRegisterDoorbell: {
        auto r = part->doorbells()->Register(kDoorbell);
        if (!r) return r.error();
        doorbells.push_back(std::move(*r));
        return Ok();
      }
      case Scenario::kDropDoorbell: {
        const size_t before = reported.size();
        doorbells.clear();
        if (reported.size() > before) return reported[before];
        return Ok();
      }
      case Scenario::kSaveVcpuState: {
        auto st = vcpus[0]->state()->SaveState();
        if (!st) return st.error();
        return Ok();
      }
      case Scenario::kRestoreVcpuState:
        return vcpus[0]->state()->RestoreState(wanted_vcpu);
      case Scenario::kSavePartitionState: {
        auto st = part->state()->SaveState();
        if (!st) return st.error();
        return Ok();
      }
      case Scenario::kRestorePartitionState: {
        auto restored = part->state()->RestoreState(wanted_partition);
        if (!restored) return restored.error();
        for (auto& r : *restored) routes.push_back(std::move(r));
        return Ok();
      }
      case Scenario::kReadDirtyLog: {
        auto bits = part->dirty_log()->ReadAndClear(kDirtyRegion.guest_address, kDirtyRegion.size);
        if (!bits) return bits.error();
        dirty_bits = *bits;
        return Ok();
      }
      case Scenario::kDropLineRoute: {
        const int fd = line_routes[0]->event().native_handle();
        const size_t before = reported.size();
        line_routes.clear();
        fake().EventClosed(fd);  // KVM releases an irqfd whose eventfd was closed
        if (reported.size() > before) return reported[before];
        return Ok();
      }
    }
    return Ok();
  }

  // Declared first so it outlives every backend object below.
  FakeKvm kvm;
  std::unique_ptr<KvmHypervisor> hv;
  std::unique_ptr<Partition> part;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
  std::vector<std::unique_ptr<IrqLineRoute>> line_routes;
  std::vector<std::unique_ptr<DoorbellRegistration>> doorbells;
  VcpuState saved_vcpu;   // kRestoreVcpuState: the state before the restore
  VcpuState wanted_vcpu;  // and the one restored
  PartitionState wanted_partition;
  std::vector<uint64_t> dirty_bits;  // kReadDirtyLog: the last read
  std::vector<Error> reported;
  std::set<Gsi> dropped;

 private:
  Scenario scenario_;
};

// The KvmIoctl calls a successful run of the operation makes, by operation name.
std::vector<std::string> RecordCalls(Scenario scenario) {
  World w(scenario);
  if (!w.Setup()) return {};
  const size_t first = w.fake().call_count();
  (void)w.Act();
  return w.fake().calls_since(first);
}

struct FailureCase {
  Scenario scenario;
  std::string op;  // the operation name of the call made to fail
  int occurrence;  // which call of that operation (0: the first)
};

void PrintTo(const FailureCase& c, std::ostream* os) {
  *os << Name(c.scenario) << ": " << c.op << " #" << c.occurrence;
}

std::vector<FailureCase> AllCases() {
  std::vector<FailureCase> out;
  for (Scenario s : kScenarios) {
    std::map<std::string, int> seen;
    for (const std::string& op : RecordCalls(s)) out.push_back({s, op, seen[op]++});
  }
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<FailureCase>& info) {
  std::string name = std::string(Name(info.param.scenario)) + "_" + info.param.op + "_" +
                     std::to_string(info.param.occurrence);
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

// The enumeration below is only as good as the recording: pin what each operation does.
TEST(KvmFailureEnumerationTest, EachOperationMakesTheExpectedCalls) {
  const std::vector<std::string> create_hypervisor = [] {
    std::vector<std::string> v = {"open", "KVM_GET_API_VERSION"};
    v.insert(v.end(), 17, "KVM_CHECK_EXTENSION");
    v.insert(v.end(), {"KVM_GET_VCPU_MMAP_SIZE", "KVM_GET_SUPPORTED_CPUID",
                       "KVM_GET_MSR_INDEX_LIST", "KVM_GET_MSR_FEATURE_INDEX_LIST"});
    return v;
  }();
  EXPECT_THAT(RecordCalls(Scenario::kCreateHypervisor), ElementsAreArray(create_hypervisor));
  EXPECT_THAT(RecordCalls(Scenario::kCreatePartition),
              ElementsAre("KVM_CREATE_VM", "KVM_SET_IDENTITY_MAP_ADDR", "KVM_SET_TSS_ADDR",
                          "KVM_CREATE_IRQCHIP", "KVM_CREATE_PIT2", "KVM_CHECK_EXTENSION",
                          "KVM_ENABLE_CAP"));
  EXPECT_THAT(RecordCalls(Scenario::kMapMemory), ElementsAre("KVM_SET_USER_MEMORY_REGION"));
  EXPECT_THAT(RecordCalls(Scenario::kCreateVcpu),
              ElementsAre("KVM_CREATE_VCPU", "mmap(kvm_run)", "KVM_SET_CPUID2"));
  EXPECT_THAT(RecordCalls(Scenario::kSetMsiNewRoute),
              ElementsAre("KVM_SET_GSI_ROUTING", "KVM_IRQFD"));
  EXPECT_THAT(RecordCalls(Scenario::kRetarget), ElementsAre("KVM_SET_GSI_ROUTING"));
  EXPECT_THAT(RecordCalls(Scenario::kClearMsi), ElementsAre("KVM_IRQFD", "KVM_SET_GSI_ROUTING"));
  EXPECT_THAT(RecordCalls(Scenario::kDropRoute), ElementsAre("KVM_IRQFD", "KVM_SET_GSI_ROUTING"));
  std::vector<std::string> batch = {"KVM_SET_GSI_ROUTING"};
  batch.insert(batch.end(), kBatchRoutes, "KVM_IRQFD");
  EXPECT_THAT(RecordCalls(Scenario::kBatchCommit), ElementsAreArray(batch));
  EXPECT_THAT(RecordCalls(Scenario::kSetCpuid), ElementsAre("KVM_SET_CPUID2"));
  EXPECT_THAT(RecordCalls(Scenario::kGetCpuid), ElementsAre("KVM_GET_CPUID2"));
  EXPECT_THAT(RecordCalls(Scenario::kMpState), ElementsAre("KVM_GET_MP_STATE", "KVM_SET_MP_STATE"));
  EXPECT_THAT(RecordCalls(Scenario::kSetLineLevel), ElementsAre("KVM_IRQ_LINE"));
  EXPECT_THAT(RecordCalls(Scenario::kNewLineRoute), ElementsAre("KVM_IRQFD"));
  EXPECT_THAT(RecordCalls(Scenario::kDropLineRoute), ElementsAre("KVM_IRQFD"));
  EXPECT_THAT(RecordCalls(Scenario::kRegisterDoorbell), ElementsAre("KVM_IOEVENTFD"));
  EXPECT_THAT(RecordCalls(Scenario::kDropDoorbell), ElementsAre("KVM_IOEVENTFD"));
  const std::vector<std::string> save_vcpu = {
      "KVM_GET_CPUID2",   "KVM_GET_MSRS",      "KVM_GET_SREGS",    "KVM_GET_REGS",
      "KVM_GET_XCRS",     "KVM_GET_XSAVE2",    "KVM_GET_DEBUGREGS", "KVM_GET_MP_STATE",
      "KVM_GET_LAPIC",    "KVM_GET_VCPU_EVENTS", "KVM_GET_MSRS"};
  EXPECT_THAT(RecordCalls(Scenario::kSaveVcpuState), ElementsAreArray(save_vcpu));
  std::vector<std::string> restore_vcpu = save_vcpu;  // the save for a rollback, then the loads
  restore_vcpu.insert(restore_vcpu.end(),
                      {"KVM_GET_CPUID2", "KVM_SET_MSRS", "KVM_SET_SREGS", "KVM_SET_REGS",
                       "KVM_SET_XCRS", "KVM_SET_XSAVE", "KVM_SET_DEBUGREGS", "KVM_SET_MP_STATE",
                       "KVM_SET_LAPIC", "KVM_SET_VCPU_EVENTS", "KVM_SET_MSRS"});
  EXPECT_THAT(RecordCalls(Scenario::kRestoreVcpuState), ElementsAreArray(restore_vcpu));
  EXPECT_THAT(RecordCalls(Scenario::kSavePartitionState),
              ElementsAre("KVM_GET_CLOCK", "KVM_GET_IRQCHIP", "KVM_GET_IRQCHIP", "KVM_GET_IRQCHIP",
                          "KVM_GET_PIT2"));
  EXPECT_THAT(RecordCalls(Scenario::kRestorePartitionState),
              ElementsAre("KVM_SET_CLOCK", "KVM_SET_IRQCHIP", "KVM_SET_IRQCHIP", "KVM_SET_IRQCHIP",
                          "KVM_SET_PIT2", "KVM_SET_GSI_ROUTING", "KVM_IRQFD"));
  EXPECT_THAT(RecordCalls(Scenario::kReadDirtyLog),
              ElementsAre("KVM_GET_DIRTY_LOG", "KVM_CLEAR_DIRTY_LOG"));
  // Each case is one call of one scenario: the pinned lists above, and the single-call ones.
  EXPECT_EQ(AllCases().size(), 23u + 7 + 1 + 3 + 2 + 1 + 2 + 2 + 11 + 1 + 1 + 2 + 1 + 1 + 1 + 1 +
                                   1 + 11 + 22 + 5 + 7 + 2);
}

class KvmFailureTest : public ::testing::TestWithParam<FailureCase> {
 protected:
  // Each live route is either armed with its entry in the kernel's table and msi() reporting
  // that entry, or masked with msi() == nullopt.
  static void ExpectRoutesMatchTheKernel(World& w) {
    const auto table = MsiEntries(w.fake().last_table());
    for (const auto& r : w.routes) {
      SCOPED_TRACE(::testing::Message() << "route with GSI " << r->gsi());
      if (w.fake().irqfd_assigned(r->event().native_handle(), r->gsi())) {
        ASSERT_TRUE(table.contains(r->gsi())) << "armed without an entry";
        EXPECT_EQ(r->msi(), table.at(r->gsi()));
      } else {
        EXPECT_EQ(r->msi(), std::nullopt) << "masked route reports an MSI";
      }
    }
  }
};

TEST_P(KvmFailureTest, FailsCleanlyAndRecovers) {
  const FailureCase& c = GetParam();
  EnsureFdLimit(1024);
  const int fds_before = CountOpenFds();

  // The reference: the operation succeeding, and the table / slot it leaves.
  std::map<uint32_t, MsiMessage> want_after;
  uint32_t want_slot = 0;
  {
    World ref(c.scenario);
    ASSERT_TRUE(ref.Setup());
    const size_t first = ref.fake().call_count();
    Status ok = ref.Act();
    ASSERT_TRUE(ok.has_value()) << ok.error().Message();
    ASSERT_THAT(ref.reported, IsEmpty());
    const auto calls = ref.fake().calls_since(first);
    ASSERT_GT(std::count(calls.begin(), calls.end(), c.op), c.occurrence);
    want_after = MsiEntries(ref.fake().last_table());
    if (!ref.fake().memory_calls().empty()) want_slot = ref.fake().memory_calls().back().slot;
  }

  World w(c.scenario);
  ASSERT_TRUE(w.Setup());
  w.fake().FailCall(c.op.c_str(), c.occurrence, EIO);
  Status outcome = w.Act();
  w.fake().ClearFailure();
  ASSERT_TRUE(w.fake().failure_fired());

  // The failure comes back (or, for a teardown, reaches the error handler) naming the ioctl.
  ASSERT_FALSE(outcome.has_value()) << "the operation succeeded although " << c.op << " failed";
  EXPECT_STREQ(outcome.error().operation, c.op.c_str());
  EXPECT_EQ(outcome.error().code, ErrorCode::kNative);
  EXPECT_EQ(outcome.error().domain, NativeDomain::kErrno);
  EXPECT_EQ(outcome.error().native_code, EIO);
  EXPECT_EQ(w.reported.size(), IsTeardown(c.scenario) ? 1u : 0u);
  w.reported.clear();
  // Even a failed deassign bends no ordering rule: the entry outlives the irqfd.
  EXPECT_THAT(w.fake().problems(), ::testing::IsEmpty());
  if (c.scenario == Scenario::kRestoreVcpuState) {
    auto now = w.vcpus[0]->state()->SaveState();
    ASSERT_TRUE(now.has_value());
    EXPECT_EQ(*now, w.saved_vcpu) << "a failed restore must leave the vCPU as it was";
  }

  if (UsesRoutes(c.scenario)) {
    ExpectRoutesMatchTheKernel(w);
    // The in-memory table is what the kernel holds: the next push carries exactly it, without
    // the routes dropped meanwhile, plus the change that caused the push.
    auto want_probe = MsiEntries(w.fake().last_table());
    for (Gsi gsi : w.dropped) want_probe.erase(gsi);
    auto probe = w.irqfd()->NewRoute();
    ASSERT_TRUE(probe.has_value());
    const uint64_t pushes = w.fake().pushes();
    VIRT_ASSERT_OK((*probe)->SetMsi(kProbeMsi));
    EXPECT_EQ(w.fake().pushes(), pushes + 1);
    want_probe[(*probe)->gsi()] = kProbeMsi;
    EXPECT_EQ(MsiEntries(w.fake().last_table()), want_probe);
    want_after[(*probe)->gsi()] = kProbeMsi;
    w.routes.push_back(std::move(*probe));
  }

  // Made again without the failure, the operation succeeds and leaves what the reference left.
  if (Retryable(c.scenario)) {
    Status again = w.Act();
    ASSERT_TRUE(again.has_value()) << again.error().Message();
  }
  if (UsesRoutes(c.scenario)) {
    EXPECT_EQ(MsiEntries(w.fake().last_table()), want_after);
    ExpectRoutesMatchTheKernel(w);
  }
  if (c.scenario == Scenario::kMapMemory) {
    EXPECT_EQ(w.fake().memory_calls().back().slot, want_slot) << "the failed map took a slot";
  }
  EXPECT_THAT(w.reported, IsEmpty());

  // No GSI leaked: with every route gone, new routes get the GSIs a fresh table hands out.
  if (IrqFd* irqfd = w.irqfd()) {
    w.routes.clear();
    EXPECT_THAT(w.reported, IsEmpty());
    EXPECT_EQ(MsiEntries(w.fake().last_table()).size(), 0u);
    constexpr uint32_t kProbeRoutes = 1 + kBatchRoutes + 5;
    std::set<Gsi> gsis, fresh;
    for (uint32_t i = 0; i < kProbeRoutes; ++i) {
      auto r = irqfd->NewRoute();
      ASSERT_TRUE(r.has_value());
      gsis.insert((*r)->gsi());
      fresh.insert(kFirstMsiGsi + i);
      w.routes.push_back(std::move(*r));
    }
    EXPECT_EQ(gsis, fresh);
  }

  if (c.scenario == Scenario::kRestoreVcpuState) {
    // The failed restore was put back: the vCPU holds what it held (before the retry below ran,
    // this was checked on `w` itself; the retry then made it the wanted state).
    auto now = w.vcpus[0]->state()->SaveState();
    ASSERT_TRUE(now.has_value());
    EXPECT_EQ(*now, w.wanted_vcpu) << "the retry restored everything";
  }
  if (c.scenario == Scenario::kReadDirtyLog) {
    // No bit was lost to the failure: the retry saw both pages.
    ASSERT_FALSE(w.dirty_bits.empty());
    EXPECT_EQ(w.dirty_bits[0], uint64_t{1} << 3);
    EXPECT_EQ(w.dirty_bits[3], uint64_t{1} << 8);
  }
  if (c.scenario == Scenario::kSetCpuid || c.scenario == Scenario::kMpState) {
    // The failed call changed nothing the retry could not set: the table and state are the
    // reference's.
    World ref(c.scenario);
    ASSERT_TRUE(ref.Setup());
    ASSERT_TRUE(ref.Act());
    EXPECT_EQ(w.fake().cpuid_set(kVcpuFdBase + 1), ref.fake().cpuid_set(kVcpuFdBase + 1));
    EXPECT_EQ(w.fake().mp_state(kVcpuFdBase + 1), ref.fake().mp_state(kVcpuFdBase + 1));
  }

  // A failed registration left no ioeventfd behind; a failed unregister left one the VM drops.
  if (c.scenario == Scenario::kRegisterDoorbell) {
    EXPECT_EQ(w.fake().ioeventfds().size(), w.doorbells.size());
  }
  // Nothing leaked: every fd closed exactly once, every kvm_run unmapped, no irqfd assigned.
  w.doorbells.clear();
  w.line_routes.clear();
  w.routes.clear();
  w.vcpus.clear();
  w.part.reset();
  w.hv.reset();
  EXPECT_THAT(w.fake().problems(), IsEmpty());
  EXPECT_THAT(w.fake().open_fds(), IsEmpty());
  EXPECT_EQ(w.fake().mapped_runs(), 0u);
  EXPECT_THAT(w.fake().assigned_irqfds(), IsEmpty());
  EXPECT_EQ(CountOpenFds(), fds_before) << "eventfds leaked";
}

INSTANTIATE_TEST_SUITE_P(EveryCall, KvmFailureTest, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace virt::kvm::test
