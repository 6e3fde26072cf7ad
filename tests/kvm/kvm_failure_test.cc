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
};

constexpr Scenario kScenarios[] = {
    Scenario::kCreateHypervisor, Scenario::kCreatePartition, Scenario::kMapMemory,
    Scenario::kCreateVcpu,       Scenario::kSetMsiNewRoute,  Scenario::kRetarget,
    Scenario::kClearMsi,         Scenario::kDropRoute,       Scenario::kBatchCommit,
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
  }
  return "?";
}

bool UsesRoutes(Scenario s) { return s >= Scenario::kSetMsiNewRoute; }
// Whether the operation can simply be made again after it failed (a dropped route is gone).
bool Retryable(Scenario s) { return s != Scenario::kDropRoute; }

constexpr int kBatchRoutes = 10;
constexpr PartitionConfig kConfig{.vcpu_count = 2, .irqchip = true};
const MemoryRegion kRegionA{0x0, 0x10000, reinterpret_cast<void*>(0x7f0000000000), {}};
const MemoryRegion kRegionB{0x100000, 0x4000, reinterpret_cast<void*>(0x7f0000100000), {}};
const MsiMessage kMsiA = MsiMessage::Fixed(0, 0x30);
const MsiMessage kMsiB = MsiMessage::Fixed(1, 0x31);
const MsiMessage kMsiB2 = MsiMessage::Fixed(2, 0x32);
const MsiMessage kProbeMsi = MsiMessage::Fixed(7, 0x77);
MsiMessage BatchMsi(int i) { return MsiMessage::Fixed(static_cast<uint8_t>(i), 0x40); }

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
    }
    return Ok();
  }

  // Declared first so it outlives every backend object below.
  FakeKvm kvm;
  std::unique_ptr<KvmHypervisor> hv;
  std::unique_ptr<Partition> part;
  std::vector<std::unique_ptr<Vcpu>> vcpus;
  std::vector<std::unique_ptr<IrqFdRoute>> routes;
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
    v.insert(v.end(), 11, "KVM_CHECK_EXTENSION");
    v.insert(v.end(), {"KVM_GET_VCPU_MMAP_SIZE", "KVM_GET_SUPPORTED_CPUID"});
    return v;
  }();
  EXPECT_THAT(RecordCalls(Scenario::kCreateHypervisor), ElementsAreArray(create_hypervisor));
  EXPECT_THAT(RecordCalls(Scenario::kCreatePartition),
              ElementsAre("KVM_CREATE_VM", "KVM_SET_IDENTITY_MAP_ADDR", "KVM_SET_TSS_ADDR",
                          "KVM_CREATE_IRQCHIP"));
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
  EXPECT_EQ(AllCases().size(), 15u + 4 + 1 + 3 + 2 + 1 + 2 + 2 + 11);
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
  EXPECT_EQ(w.reported.size(), c.scenario == Scenario::kDropRoute ? 1u : 0u);
  w.reported.clear();
  // Even a failed deassign bends no ordering rule: the entry outlives the irqfd.
  EXPECT_THAT(w.fake().problems(), ::testing::IsEmpty());

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

  // Nothing leaked: every fd closed exactly once, every kvm_run unmapped, no irqfd assigned.
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
