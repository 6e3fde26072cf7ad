// KvmHypervisor against a mocked KvmIoctl: Create's ioctl sequence and checks, Probe's mapping of failures, CreatePartition.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::AtLeast;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::Pointee;
using ::testing::StrEq;

using KvmHypervisorTest = KvmMockTest;

struct NamedCap {
  int cap;
  const char* name;
};
constexpr NamedCap kRequiredCaps[] = {
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
};

std::vector<kvm_cpuid_entry2> ManyCpuidEntries(uint32_t n) {
  std::vector<kvm_cpuid_entry2> v = FakeKvmState::DefaultCpuid();
  for (uint32_t i = static_cast<uint32_t>(v.size()); i < n; ++i) {
    kvm_cpuid_entry2 e{};
    e.function = 0x40000000 + i;
    e.eax = i;
    v.push_back(e);
  }
  return v;
}

TEST_F(KvmHypervisorTest, CreateMakesTheIoctlsInOrderAndGrowsTheCpuidBufferOnE2big) {
  fake().SetCpuid(ManyCpuidEntries(200));  // more than the first 128-entry buffer holds
  {
    InSequence seq;
    EXPECT_CALL(mock(), Open(StrEq("/dev/kvm")));
    EXPECT_CALL(mock(), GetApiVersion(kKvmFd));
    EXPECT_CALL(mock(), CheckExtension(kKvmFd, _)).Times(AtLeast(std::size(kRequiredCaps)));
    EXPECT_CALL(mock(), GetVcpuMmapSize(kKvmFd));
    EXPECT_CALL(mock(), GetSupportedCpuid(kKvmFd, Pointee(Field(&kvm_cpuid2::nent, 128u))));
    EXPECT_CALL(mock(), GetSupportedCpuid(kKvmFd, Pointee(Field(&kvm_cpuid2::nent, 256u))));
    EXPECT_CALL(mock(), Close(kKvmFd));  // only when the hypervisor goes away
  }
  EXPECT_CALL(mock(), CreateVm(_, _)).Times(0);

  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_TRUE(hv.has_value()) << hv.error().Message();
  EXPECT_EQ(fake().close_count(kKvmFd), 0);

  // Every required capability, and the ones the caps are read from, were asked on /dev/kvm.
  const std::vector<int> asked = fake().capabilities_checked();
  for (const NamedCap& rc : kRequiredCaps) {
    EXPECT_NE(std::find(asked.begin(), asked.end(), rc.cap), asked.end()) << rc.name;
  }
  for (int cap : {KVM_CAP_NR_MEMSLOTS, KVM_CAP_MAX_VCPUS, KVM_CAP_SET_IDENTITY_MAP_ADDR}) {
    EXPECT_NE(std::find(asked.begin(), asked.end(), cap), asked.end()) << cap;
  }

  const KvmHostCaps& caps = (*hv)->caps();
  EXPECT_EQ(caps.vcpu_mmap_size, kRunMmapSize);
  EXPECT_EQ(caps.max_memslots, kMaxMemslots);
  EXPECT_EQ(caps.max_vcpus, kMaxVcpus);
  EXPECT_EQ(caps.max_irq_routes, kMaxIrqRoutes);
  EXPECT_TRUE(caps.identity_map_addr);
  EXPECT_EQ((*hv)->name(), "kvm");
  hv->reset();
  EXPECT_EQ(fake().close_count(kKvmFd), 1);
}

TEST_F(KvmHypervisorTest, TheSupportedCpuidIsTrimmedToWhatKvmReturnedAndHandedToVcpus) {
  fake().SetCpuid(ManyCpuidEntries(200));
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  auto part = NewPartition(*hv);
  ASSERT_NE(part, nullptr);
  auto vcpu = part->CreateVcpu(0);
  ASSERT_TRUE(vcpu.has_value()) << vcpu.error().Message();
  const auto set = fake().CpuidEntriesSet(kVcpuFdBase);
  ASSERT_EQ(set.size(), 200u);
  EXPECT_EQ(set[199].function, 0x40000000u + 199);
}

TEST_F(KvmHypervisorTest, CpuidThatNeverFitsFailsAfterTheLargestBuffer) {
  fake().SetCpuid(ManyCpuidEntries(5000));
  EXPECT_CALL(mock(), GetSupportedCpuid(kKvmFd, _)).Times(6);  // 128, 256, ..., 4096
  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_FALSE(hv.has_value());
  EXPECT_STREQ(hv.error().operation, "KVM_GET_SUPPORTED_CPUID");
  EXPECT_EQ(fake().close_count(kKvmFd), 1);
}

TEST_F(KvmHypervisorTest, CpuidErrorOtherThanE2bigIsNotRetried) {
  fake().FailCall("KVM_GET_SUPPORTED_CPUID", 0, EFAULT);
  EXPECT_CALL(mock(), GetSupportedCpuid(kKvmFd, _)).Times(1);
  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_FALSE(hv.has_value());
  EXPECT_STREQ(hv.error().operation, "KVM_GET_SUPPORTED_CPUID");
  EXPECT_EQ(hv.error().native_code, EFAULT);
  EXPECT_EQ(fake().close_count(kKvmFd), 1);
}

TEST_F(KvmHypervisorTest, OpensTheGivenDevicePath) {
  EXPECT_CALL(mock(), Open(StrEq("/dev/kvm-other")));
  auto hv = KvmHypervisor::Create(kvm_.mock, "/dev/kvm-other");
  ASSERT_TRUE(hv.has_value()) << hv.error().Message();
}

TEST_F(KvmHypervisorTest, WrongApiVersionIsUnavailableAndClosesTheFd) {
  fake().SetApiVersion(11);
  EXPECT_CALL(mock(), CheckExtension(_, _)).Times(0);
  EXPECT_CALL(mock(), Close(kKvmFd)).Times(1);
  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_FALSE(hv.has_value());
  EXPECT_EQ(hv.error().code, ErrorCode::kUnavailable);
  EXPECT_STREQ(hv.error().operation, "KVM_GET_API_VERSION");
  EXPECT_THAT(hv.error().detail, HasSubstr("11"));
}

TEST_F(KvmHypervisorTest, VcpuMmapSizeSmallerThanKvmRunIsUnavailable) {
  fake().SetMmapSize(64);
  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_FALSE(hv.has_value());
  EXPECT_EQ(hv.error().code, ErrorCode::kUnavailable);
  EXPECT_STREQ(hv.error().operation, "KVM_GET_VCPU_MMAP_SIZE");
  EXPECT_EQ(fake().close_count(kKvmFd), 1);
}

TEST_F(KvmHypervisorTest, OldKernelsIrqRoutingAnswerOfOneMeans1024Routes) {
  fake().SetCapability(KVM_CAP_IRQ_ROUTING, 1);
  fake().SetCapability(KVM_CAP_SET_IDENTITY_MAP_ADDR, 0);
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  EXPECT_EQ(hv->caps().max_irq_routes, 1024);
  EXPECT_FALSE(hv->caps().identity_map_addr);
}

class MissingCapabilityTest : public KvmMockTest,
                              public ::testing::WithParamInterface<NamedCap> {};

TEST_P(MissingCapabilityTest, FailsNamingTheCapabilityAndClosesTheFd) {
  fake().SetCapability(GetParam().cap, 0);
  EXPECT_CALL(mock(), GetSupportedCpuid(_, _)).Times(0);
  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_FALSE(hv.has_value());
  EXPECT_EQ(hv.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(hv.error().Message(), HasSubstr(GetParam().name));
  EXPECT_EQ(fake().close_count(kKvmFd), 1);

  // And Probe reports it as an API problem.
  Availability a = KvmHypervisor::Probe(kvm_.mock);
  EXPECT_EQ(a.why, Unavailability::kApiVersion);
  EXPECT_THAT(a.reason, HasSubstr(GetParam().name));
}

INSTANTIATE_TEST_SUITE_P(RequiredCaps, MissingCapabilityTest, ::testing::ValuesIn(kRequiredCaps),
                         [](const auto& info) { return std::string(info.param.name); });

TEST_F(KvmHypervisorTest, ProbeOfAWorkingDeviceIsAvailableAndClosesIt) {
  Availability a = KvmHypervisor::Probe(kvm_.mock);
  EXPECT_TRUE(a.available()) << a.reason;
  EXPECT_EQ(a.why, Unavailability::kNone);
  EXPECT_EQ(fake().close_count(kKvmFd), 1);
}

struct ProbeCase {
  const char* name;
  int open_errno;  // 0: open succeeds
  int api_version;
  Unavailability want;
};

class ProbeTest : public KvmMockTest, public ::testing::WithParamInterface<ProbeCase> {};

TEST_P(ProbeTest, MapsTheFailureAndNamesTheDevice) {
  const ProbeCase& c = GetParam();
  if (c.open_errno != 0) fake().SetOpenErrno(c.open_errno);
  fake().SetApiVersion(c.api_version);
  Availability a = KvmHypervisor::Probe(kvm_.mock, "/dev/kvm-probe");
  EXPECT_EQ(a.why, c.want) << ToString(a.why) << ": " << a.reason;
  EXPECT_FALSE(a.available());
  EXPECT_THAT(a.reason, HasSubstr("/dev/kvm-probe"));
  if (c.open_errno != 0) {
    EXPECT_THAT(a.reason, HasSubstr(std::strerror(c.open_errno)));
  }
  EXPECT_THAT(fake().opened_paths(), ::testing::ElementsAre("/dev/kvm-probe"));
}

INSTANTIATE_TEST_SUITE_P(
    Failures, ProbeTest,
    ::testing::Values(ProbeCase{"ENOENT", ENOENT, 12, Unavailability::kDeviceMissing},
                      ProbeCase{"ENODEV", ENODEV, 12, Unavailability::kDeviceMissing},
                      ProbeCase{"EACCES", EACCES, 12, Unavailability::kPermissionDenied},
                      ProbeCase{"EPERM", EPERM, 12, Unavailability::kPermissionDenied},
                      ProbeCase{"EMFILE", EMFILE, 12, Unavailability::kOther},
                      ProbeCase{"ApiVersion", 0, 11, Unavailability::kApiVersion}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(KvmHypervisorTest, OpenErrorIsReturnedWithErrno) {
  fake().SetOpenErrno(ENOENT);
  EXPECT_CALL(mock(), GetApiVersion(_)).Times(0);
  EXPECT_CALL(mock(), Close(_)).Times(0);
  auto hv = KvmHypervisor::Create(kvm_.mock);
  ASSERT_FALSE(hv.has_value());
  EXPECT_STREQ(hv.error().operation, "open");
  EXPECT_EQ(hv.error().native_code, ENOENT);
}

TEST_F(KvmHypervisorTest, CreatePartitionSequenceWithIrqchip) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  {
    InSequence seq;
    EXPECT_CALL(mock(), CreateVm(kKvmFd, 0ul));
    EXPECT_CALL(mock(), SetIdentityMapAddr(kVmFd, 0xfeffc000ull));
    EXPECT_CALL(mock(), SetTssAddr(kVmFd, 0xfeffd000ull));
    EXPECT_CALL(mock(), CreateIrqchip(kVmFd));
    EXPECT_CALL(mock(), Close(kVmFd));  // when the partition goes
  }
  auto part = hv->CreatePartition({.vcpu_count = 2, .irqchip = true});
  ASSERT_TRUE(part.has_value()) << part.error().Message();
  EXPECT_NE((*part)->irqfd(), nullptr);
  EXPECT_EQ(fake().close_count(kVmFd), 0);
  part->reset();
  EXPECT_EQ(fake().close_count(kVmFd), 1);
  ::testing::Mock::VerifyAndClearExpectations(&mock());
}

TEST_F(KvmHypervisorTest, CreatePartitionWithoutIrqchipHasNoIrqFd) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  {
    InSequence seq;
    EXPECT_CALL(mock(), CreateVm(kKvmFd, 0ul));
    EXPECT_CALL(mock(), SetIdentityMapAddr(kVmFd, 0xfeffc000ull));
    EXPECT_CALL(mock(), SetTssAddr(kVmFd, 0xfeffd000ull));
  }
  EXPECT_CALL(mock(), CreateIrqchip(_)).Times(0);
  auto part = hv->CreatePartition({.vcpu_count = 1, .irqchip = false});
  ASSERT_TRUE(part.has_value()) << part.error().Message();
  EXPECT_EQ((*part)->irqfd(), nullptr);
}

TEST_F(KvmHypervisorTest, ThePitIsCreatedAfterTheIrqchipWithTheDummySpeaker) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  EXPECT_TRUE(hv->caps().pit2);
  {
    InSequence seq;
    EXPECT_CALL(mock(), CreateIrqchip(kVmFd));
    EXPECT_CALL(mock(), CreatePit2(kVmFd, _)).WillOnce([this](int fd, const kvm_pit_config& c) {
      EXPECT_EQ(c.flags, static_cast<uint32_t>(KVM_PIT_SPEAKER_DUMMY));
      for (uint32_t pad : c.pad) EXPECT_EQ(pad, 0u);
      return fake().CreatePit2(fd, c);
    });
  }
  auto part = hv->CreatePartition({.vcpu_count = 1, .irqchip = true, .pit = true});
  ASSERT_TRUE(part.has_value()) << part.error().Message();
  EXPECT_EQ(fake().pit_configs().size(), 1u);
  // Without the option there is no PIT.
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_CALL(mock(), CreatePit2(_, _)).Times(0);
  part->reset();
  auto plain = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_TRUE(plain.has_value());
}

TEST_F(KvmHypervisorTest, APitWithoutIrqchipOrCapabilityIsRefusedBeforeTheVmExists) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  const size_t before = fake().call_count();
  auto no_chip = hv->CreatePartition({.vcpu_count = 1, .irqchip = false, .pit = true});
  EXPECT_THAT(no_chip, IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(no_chip.error().Message(), HasSubstr("irqchip"));
  EXPECT_EQ(fake().call_count(), before);
  hv.reset();

  fake().SetCapability(KVM_CAP_PIT2, 0);
  hv = NewHypervisor();
  const size_t before2 = fake().call_count();
  auto no_cap = hv->CreatePartition({.vcpu_count = 1, .irqchip = true, .pit = true});
  EXPECT_THAT(no_cap, IsErrorCode(ErrorCode::kUnavailable));
  EXPECT_THAT(no_cap.error().Message(), HasSubstr("KVM_CAP_PIT2"));
  EXPECT_EQ(fake().call_count(), before2);
}

TEST_F(KvmHypervisorTest, AFailedPitCreationClosesTheVm) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  fake().FailCall("KVM_CREATE_PIT2", 0, EEXIST);
  auto part = hv->CreatePartition({.vcpu_count = 1, .irqchip = true, .pit = true});
  ASSERT_FALSE(part.has_value());
  EXPECT_STREQ(part.error().operation, "KVM_CREATE_PIT2");
  EXPECT_EQ(part.error().native_code, EEXIST);
  EXPECT_EQ(fake().close_count(kVmFd), 1);
}

TEST_F(KvmHypervisorTest, NoIdentityMapCallWithoutTheCapability) {
  fake().SetCapability(KVM_CAP_SET_IDENTITY_MAP_ADDR, 0);
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  EXPECT_CALL(mock(), SetIdentityMapAddr(_, _)).Times(0);
  EXPECT_CALL(mock(), SetTssAddr(kVmFd, 0xfeffd000ull));
  auto part = NewPartition(*hv);
  EXPECT_NE(part, nullptr);
}

TEST_F(KvmHypervisorTest, VcpuCountOutOfRangeIsInvalidWithoutAnyIoctl) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  const size_t before = fake().call_count();
  for (uint32_t n : {0u, static_cast<uint32_t>(kMaxVcpus) + 1, 1000u}) {
    auto part = hv->CreatePartition({.vcpu_count = n, .irqchip = true});
    ASSERT_FALSE(part.has_value()) << n;
    EXPECT_EQ(part.error().code, ErrorCode::kInvalidArgument) << n;
  }
  EXPECT_EQ(fake().call_count(), before) << ::testing::PrintToString(fake().calls_since(before));
  auto max = hv->CreatePartition({.vcpu_count = kMaxVcpus, .irqchip = true});
  EXPECT_TRUE(max.has_value());
}

TEST_F(KvmHypervisorTest, TooFewIrqRoutesFailsPartitionCreationAndClosesTheVm) {
  fake().SetCapability(KVM_CAP_IRQ_ROUTING, 40);  // 24 after the 16 spare: no room for MSIs
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  auto part = hv->CreatePartition({.vcpu_count = 1, .irqchip = true});
  ASSERT_FALSE(part.has_value());
  EXPECT_EQ(part.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(fake().close_count(kVmFd), 1);
}

TEST_F(KvmHypervisorTest, PartitionsMayOutliveTheirHypervisor) {
  auto hv = NewHypervisor();
  ASSERT_NE(hv, nullptr);
  auto part = NewPartition(*hv, {.vcpu_count = 2, .irqchip = true});
  ASSERT_NE(part, nullptr);
  hv.reset();
  EXPECT_EQ(fake().close_count(kKvmFd), 1);
  // Churn the heap so a dangling reference to the hypervisor's CPUID would read garbage.
  std::vector<std::vector<uint8_t>> churn;
  for (int i = 0; i < 64; ++i) churn.emplace_back(8192 + i * 64, 0xEE);
  auto vcpu = part->CreateVcpu(1);
  ASSERT_TRUE(vcpu.has_value()) << vcpu.error().Message();
  const auto set = fake().CpuidEntriesSet(kVcpuFdBase + 1);
  const auto want = FakeKvmState::DefaultCpuid();
  ASSERT_EQ(set.size(), want.size());
  for (size_t i = 0; i < set.size(); ++i) EXPECT_EQ(set[i].function, want[i].function) << i;
}

TEST_F(KvmHypervisorTest, BackendInfoIsNamedKvm) {
  BackendInfo info = KvmBackendInfo();
  EXPECT_EQ(info.name, "kvm");
  EXPECT_TRUE(info.probe);
  EXPECT_TRUE(info.open);
}

}  // namespace
}  // namespace virt::kvm::test
