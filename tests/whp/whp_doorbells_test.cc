// WHP doorbells against FakeWhp: the exact WHV_DOORBELL_MATCH_DATA of every MMIO length with and
// without a data match, port I/O refused, collisions refused before WHP, WHP's own conflict,
// HRESULTs carried, release and partition lifetime.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "whp_doorbells_fixture.h"

namespace virt::whp::test {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kMatchOnValue = 1u << 0;
constexpr uint32_t kMatchOnLength = 1u << 1;

// One registration and the WHV_DOORBELL_MATCH_DATA WHP must receive for it.
struct PayloadCase {
  const char* name;
  uint64_t address;
  uint32_t length;              // a DoorbellMatch length (kDoorbellAnyLength for any)
  std::optional<uint64_t> data;
  uint32_t whp_length;          // WHV_DOORBELL_MATCH_DATA::Length
  uint64_t whp_value;           // WHV_DOORBELL_MATCH_DATA::Value
  uint32_t whp_flags;           // the MatchOnValue / MatchOnLength word
};

void PrintTo(const PayloadCase& c, std::ostream* os) { *os << c.name; }

std::string CaseName(const testing::TestParamInfo<PayloadCase>& info) { return info.param.name; }

const PayloadCase kPayloads[] = {
    {"Mmio1", 0xfeb00001, 1, {}, 1, 0, kMatchOnLength},
    {"Mmio1Data", 0xfeb00003, 1, 0xa5, 1, 0xa5, kMatchOnLength | kMatchOnValue},
    {"Mmio2", 0xfeb01002, 2, {}, 2, 0, kMatchOnLength},
    {"Mmio2Data", 0xfeb01000, 2, 0x0007, 2, 7, kMatchOnLength | kMatchOnValue},
    {"Mmio4", 0xfeb02004, 4, {}, 4, 0, kMatchOnLength},
    {"Mmio4Data", 0xfeb02000, 4, 0xdeadbeef, 4, 0xdeadbeef, kMatchOnLength | kMatchOnValue},
    {"Mmio8", 0xfeb03008, 8, {}, 8, 0, kMatchOnLength},
    {"Mmio8Data", 0xfeb03000, 8, ~0ull, 8, ~0ull, kMatchOnLength | kMatchOnValue},
    {"Mmio8DataZero", 0xfeb03010, 8, 0, 8, 0, kMatchOnLength | kMatchOnValue},
    {"MmioAnyLength", 0xfeb04001, kDoorbellAnyLength, {}, 0, 0, 0},
    {"MmioAbove4G", 0x1'0000'2000, 4, 1, 4, 1, kMatchOnLength | kMatchOnValue},
};

class WhpDoorbellPayloadTest : public WhpDoorbellsTest,
                               public testing::WithParamInterface<PayloadCase> {};

TEST_P(WhpDoorbellPayloadTest, RegisterAndReleaseSendTheExactMatchData) {
  const PayloadCase& c = GetParam();
  ASSERT_NE(doorbells_, nullptr);
  auto r = doorbells_->Register({DoorbellSpace::kMmio, c.address, c.length, c.data});
  ASSERT_TRUE(r.has_value()) << r.error().Message();

  const auto calls = fake_.doorbell_calls();
  ASSERT_EQ(calls.size(), 1u);
  const FakeWhp::DoorbellCall& reg = calls[0];
  EXPECT_TRUE(reg.registers);
  EXPECT_EQ(reg.partition, handle_);
  EXPECT_EQ(reg.event, WhpDoorbellOps::HandleOf((*r)->event()));
  EXPECT_EQ(reg.match.GuestAddress, c.address);
  EXPECT_EQ(reg.match.Value, c.whp_value);
  EXPECT_EQ(reg.match.Length, c.whp_length);
  EXPECT_EQ(FlagsWord(reg.match), c.whp_flags) << "Reserved must be zero";
  ASSERT_EQ(fake_.doorbells().size(), 1u);

  ASSERT_TRUE((*r)->Release());
  const auto after = fake_.doorbell_calls();
  ASSERT_EQ(after.size(), 2u);
  EXPECT_FALSE(after[1].registers);
  EXPECT_EQ(after[1].partition, handle_);
  EXPECT_TRUE(FakeWhp::SameMatch(after[1].match, reg.match))
      << "WHP finds the registration by the exact match data";
  EXPECT_TRUE(fake_.doorbells().empty());
  EXPECT_EQ(TableSize(), 0u);
}

INSTANTIATE_TEST_SUITE_P(EachLength, WhpDoorbellPayloadTest, testing::ValuesIn(kPayloads),
                         CaseName);

// WHV_DOORBELL_MATCH_DATA has no port I/O form: every port match is refused before WHP.
struct PortCase {
  const char* name;
  uint32_t length;
  std::optional<uint64_t> data;
};

void PrintTo(const PortCase& c, std::ostream* os) { *os << c.name; }

std::string PortName(const testing::TestParamInfo<PortCase>& info) { return info.param.name; }

class WhpDoorbellPortTest : public WhpDoorbellsTest,
                            public testing::WithParamInterface<PortCase> {};

TEST_P(WhpDoorbellPortTest, PortDoorbellsAreUnavailableWithoutAWhvCall) {
  auto r = doorbells_->Register({DoorbellSpace::kPio, 0xc050, GetParam().length, GetParam().data});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().detail.find("UserModeDoorbells"), std::string::npos) << r.error().detail;
  EXPECT_EQ(Calls(), 0u);
  EXPECT_EQ(TableSize(), 0u);
}

INSTANTIATE_TEST_SUITE_P(EachLength, WhpDoorbellPortTest,
                         testing::Values(PortCase{"Port1", 1, {}}, PortCase{"Port1Data", 1, 3},
                                         PortCase{"Port2", 2, {}}, PortCase{"Port2Data", 2, 7},
                                         PortCase{"Port4", 4, {}},
                                         PortCase{"Port4Data", 4, 0x12345678},
                                         PortCase{"PortAnyLength", kDoorbellAnyLength, {}}),
                         PortName);

TEST_F(WhpDoorbellsTest, AnyLengthIsSupported) {
  ASSERT_NE(doorbells_, nullptr);
  EXPECT_TRUE(doorbells_->supports_any_length());
}

TEST_F(WhpDoorbellsTest, DoorbellsNeedNoIrqchip) {
  Open({.vcpu_count = 1, .irqchip = false});
  EXPECT_NE(partition_->doorbells(), nullptr);
}

TEST_F(WhpDoorbellsTest, WithoutTheDoorbellFunctionsThereAreNoDoorbells) {
  fake_.set_has_doorbells(false);
  Open();
  EXPECT_EQ(partition_->doorbells(), nullptr);
}

// What FakeWhp does on a guest store is what WHP does: it sets the registered HANDLE, and the
// registration's Event sees it.
TEST_F(WhpDoorbellsTest, AMatchingGuestWriteWakesTheRegistrationsEvent) {
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe000000, 2, 5});
  ASSERT_TRUE(r.has_value()) << r.error().Message();
  EXPECT_FALSE(fake_.GuestWrite(0xfe000000, 2, 4)) << "another value exits";
  EXPECT_FALSE(fake_.GuestWrite(0xfe000000, 4, 5)) << "another length exits";
  EXPECT_FALSE(fake_.GuestWrite(0xfe000002, 2, 5)) << "another address exits";
  auto none = (*r)->event().TryWait();
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, 0u);
  EXPECT_TRUE(fake_.GuestWrite(0xfe000000, 2, 5));
  auto n = (*r)->event().Wait(10s);
  ASSERT_TRUE(n.has_value()) << n.error().Message();
  EXPECT_EQ(*n, 1u);
  ASSERT_TRUE((*r)->Release());
  EXPECT_FALSE(fake_.GuestWrite(0xfe000000, 2, 5)) << "released: the write exits again";
}

TEST_F(WhpDoorbellsTest, AnAnyLengthDoorbellRingsForEveryWidth) {
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe000010, kDoorbellAnyLength, {}});
  ASSERT_TRUE(r.has_value()) << r.error().Message();
  for (uint32_t width : {1u, 2u, 4u, 8u}) EXPECT_TRUE(fake_.GuestWrite(0xfe000010, width, 9));
  auto n = (*r)->event().Wait(10s);
  ASSERT_TRUE(n.has_value());
  EXPECT_GE(*n, 1u);  // eventfd counts 4; a Windows event coalesces SetEvents
}

TEST_F(WhpDoorbellsTest, VirtioStyleQueuesShareAnAddressByDataMatch) {
  std::vector<std::unique_ptr<DoorbellRegistration>> queues;
  for (uint64_t q = 0; q < 4; ++q) {
    auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe003000, 2, q});
    ASSERT_TRUE(r.has_value()) << r.error().Message();
    queues.push_back(std::move(*r));
  }
  EXPECT_EQ(fake_.doorbells().size(), 4u);
  EXPECT_TRUE(fake_.GuestWrite(0xfe003000, 2, 2));
  auto n = queues[2]->event().Wait(10s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(*queues[1]->event().TryWait(), 0u);
  queues.clear();
  EXPECT_TRUE(fake_.doorbells().empty());
}

// The collisions of the shared rule never reach WHP (which would answer
// ERROR_HV_INVALID_PARAMETER for each of them too).
TEST_F(WhpDoorbellsTest, CollisionsAreRefusedWithOverlapBeforeWhpSeesThem) {
  auto queue = doorbells_->Register({DoorbellSpace::kMmio, 0xfe004000, 4, 1});
  auto any = doorbells_->Register({DoorbellSpace::kMmio, 0xfe005000, kDoorbellAnyLength, {}});
  ASSERT_TRUE(queue.has_value() && any.has_value());
  const size_t calls = Calls();
  const DoorbellMatch colliding[] = {
      {DoorbellSpace::kMmio, 0xfe004000, 4, 1},                   // the same doorbell again
      {DoorbellSpace::kMmio, 0xfe004000, 4, {}},                  // any value over a value
      {DoorbellSpace::kMmio, 0xfe004000, kDoorbellAnyLength, {}}, // any length over a length
      {DoorbellSpace::kMmio, 0xfe005000, 4, 1},                   // a length under any length
      {DoorbellSpace::kMmio, 0xfe005000, kDoorbellAnyLength, {}},
  };
  for (const DoorbellMatch& m : colliding) {
    SCOPED_TRACE(Describe(m));
    auto r = doorbells_->Register(m);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kOverlap);
  }
  EXPECT_EQ(Calls(), calls) << "no collision reached WHP";
  EXPECT_EQ(fake_.doorbells().size(), 2u);
  EXPECT_EQ(TableSize(), 2u);
}

// WHP allows one length per address; the shared rule (KVM's) allows two. WHP's answer is
// reported as kOverlap with its HRESULT, and nothing changes.
TEST_F(WhpDoorbellsTest, AnotherLengthAtARegisteredAddressIsWhpsOverlap) {
  auto two = doorbells_->Register({DoorbellSpace::kMmio, 0xfe006000, 2, 1});
  ASSERT_TRUE(two.has_value());
  auto four = doorbells_->Register({DoorbellSpace::kMmio, 0xfe006000, 4, 2});
  ASSERT_FALSE(four.has_value());
  EXPECT_EQ(four.error().code, ErrorCode::kOverlap);
  EXPECT_STREQ(four.error().operation, "WHvRegisterPartitionDoorbellEvent");
  EXPECT_EQ(four.error().domain, NativeDomain::kHresult);
  EXPECT_EQ(four.error().native_code, NativeOf(kHrHvInvalidParameter));
  EXPECT_EQ(fake_.doorbells().size(), 1u);
  EXPECT_EQ(TableSize(), 1u);
  EXPECT_TRUE(fake_.GuestWrite(0xfe006000, 2, 1)) << "the first doorbell still rings";
}

TEST_F(WhpDoorbellsTest, AWhpRefusalCarriesItsHresultAndLeavesNothing) {
  fake_.FailNext("RegisterPartitionDoorbellEvent", kHrAccessDenied);
  const DoorbellMatch m{DoorbellSpace::kMmio, 0xfe007000, 4, {}};
  auto r = doorbells_->Register(m);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNative);
  EXPECT_STREQ(r.error().operation, "WHvRegisterPartitionDoorbellEvent");
  EXPECT_EQ(r.error().domain, NativeDomain::kHresult);
  EXPECT_EQ(r.error().native_code, NativeOf(kHrAccessDenied));
  EXPECT_TRUE(fake_.doorbells().empty());
  EXPECT_EQ(TableSize(), 0u);
  auto again = doorbells_->Register(m);
  EXPECT_TRUE(again.has_value()) << "the refused match was not kept as a collision";
}

TEST_F(WhpDoorbellsTest, BadMatchesAreRefusedWithoutAWhvCall) {
  const DoorbellMatch bad[] = {
      {DoorbellSpace::kMmio, 0xfe008000, 0, {}},                   // zero length
      {DoorbellSpace::kMmio, 0xfe008002, 4, {}},                   // unaligned
      {DoorbellSpace::kMmio, 0xfe008000, 3, {}},                   // not 1/2/4/8
      {DoorbellSpace::kMmio, 0xfe008000, 2, 0x10000},              // data wider than 2 bytes
      {DoorbellSpace::kMmio, 0xfe008000, kDoorbellAnyLength, 1},   // data without a length
      {DoorbellSpace::kMmio, ~0ull - 3, 8, {}},                    // wraps / unaligned
  };
  for (const DoorbellMatch& m : bad) {
    SCOPED_TRACE(Describe(m));
    auto r = doorbells_->Register(m);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(Calls(), 0u);
  EXPECT_EQ(TableSize(), 0u);
}

TEST_F(WhpDoorbellsTest, AFailedUnregisterIsReleasesErrorAndTheSecondReleaseIsRefused) {
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe009000, 4, {}});
  ASSERT_TRUE(r.has_value());
  fake_.FailNext("UnregisterPartitionDoorbellEvent", kHrAccessDenied);
  Status s = (*r)->Release();
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "WHvUnregisterPartitionDoorbellEvent");
  EXPECT_EQ(s.error().native_code, NativeOf(kHrAccessDenied));
  EXPECT_EQ(TableSize(), 0u) << "out of the table whatever WHP said";
  const size_t calls = Calls();
  Status twice = (*r)->Release();
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(Calls(), calls) << "a double release makes no WHv call";
}

TEST_F(WhpDoorbellsTest, ADoubleReleaseIsRefusedAndMakesNoCall) {
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe00a000, 1, 0x7f});
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE((*r)->Release());
  const size_t calls = Calls();
  Status s = (*r)->Release();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyReleased);
  r->reset();
  EXPECT_EQ(Calls(), calls);
}

TEST_F(WhpDoorbellsTest, DestroyingARegistrationUnregistersItAndReportsAFailure) {
  std::vector<Error> reported;
  doorbells_->SetErrorHandler([&reported](const Error& e) { reported.push_back(e); });
  auto ok = doorbells_->Register({DoorbellSpace::kMmio, 0xfe00b000, 4, {}});
  auto failing = doorbells_->Register({DoorbellSpace::kMmio, 0xfe00c000, 4, {}});
  ASSERT_TRUE(ok.has_value() && failing.has_value());
  ok->reset();
  EXPECT_EQ(fake_.doorbells().size(), 1u);
  EXPECT_TRUE(reported.empty());
  fake_.FailNext("UnregisterPartitionDoorbellEvent", kHrAccessDenied);
  failing->reset();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_STREQ(reported[0].operation, "WHvUnregisterPartitionDoorbellEvent");
  EXPECT_EQ(reported[0].native_code, NativeOf(kHrAccessDenied));
  EXPECT_EQ(TableSize(), 0u);
}

TEST_F(WhpDoorbellsTest, RegistrationsOutlivingThePartitionFailWithPartitionGone) {
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe00d000, 4, {}});
  ASSERT_TRUE(r.has_value());
  const size_t calls = Calls();
  partition_.reset();
  EXPECT_TRUE(fake_.live_partitions().empty());
  EXPECT_TRUE(fake_.doorbells().empty()) << "WHvDeletePartition took the doorbell with it";
  Status s = (*r)->Release();
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kPartitionGone);
  r->reset();
  EXPECT_EQ(Calls(), calls) << "no WHv call after the partition went";
}

// A vCPU keeps the WHP partition alive after its Partition object: the doorbell stays in WHP
// until WHvDeletePartition, while the registration is already gone for the VMM.
TEST_F(WhpDoorbellsTest, AVcpuOutlivingThePartitionKeepsWhpsDoorbellUntilItGoes) {
  auto vcpu = partition_->CreateVcpu(0);
  ASSERT_TRUE(vcpu.has_value()) << vcpu.error().Message();
  auto r = doorbells_->Register({DoorbellSpace::kMmio, 0xfe00e000, 4, {}});
  ASSERT_TRUE(r.has_value());
  const size_t calls = Calls();
  partition_.reset();
  EXPECT_EQ((*r)->Release().error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(fake_.doorbells().size(), 1u);
  r->reset();
  vcpu->reset();
  EXPECT_TRUE(fake_.live_partitions().empty());
  EXPECT_TRUE(fake_.doorbells().empty());
  EXPECT_EQ(Calls(), calls);
}

}  // namespace
}  // namespace virt::whp::test
