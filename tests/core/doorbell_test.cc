// Doorbells in the core: DoorbellMatch rules, KernelDoorbells over fake ops, UserModeDoorbells
// dispatch, collisions, lifetime, and registration churn racing dispatch on many threads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "virt/kernel_doorbells.h"
#include "virt/user_mode_doorbells.h"

namespace virt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr DoorbellMatch Mmio(uint64_t address, uint32_t length, std::optional<uint64_t> data = {}) {
  return {DoorbellSpace::kMmio, address, length, data};
}
constexpr DoorbellMatch Pio(uint64_t address, uint32_t length, std::optional<uint64_t> data = {}) {
  return {DoorbellSpace::kPio, address, length, data};
}

// An OUT of `size` bytes from `storage` (little-endian value).
IoExit Out(uint16_t port, uint8_t size, const uint8_t* storage) {
  IoExit io;
  io.port = port, io.size = size, io.is_write = true, io.count = 1;
  io.data = {storage, size};
  return io;
}

MmioExit Write(uint64_t address, uint8_t size, uint64_t value) {
  return MmioExit{address, size, true, value};
}

TEST(DoorbellMatchTest, ValidationNamesTheProblem) {
  struct Case {
    DoorbellMatch m;
    const char* why;
  };
  const Case bad[] = {
      {Mmio(0x1000, 0), "zero-length"},
      {Mmio(0x1000, 3), "1, 2, 4 or 8"},
      {Mmio(0x1002, 4), "unaligned"},
      {Mmio(0x1004, 8), "unaligned"},
      {Mmio(0xfffffffffffffff8, 8), "wraps"},
      {Pio(0x60, 8), "at most 4 bytes"},
      {Pio(0xffff, 2), "beyond port 0xffff"},
      {Pio(0x10000, 1), "beyond port 0xffff"},
      {Mmio(0x1000, kDoorbellAnyLength, 1), "fixed length"},
      {Mmio(0x1000, 1, 0x100), "wider than the length"},
      {Pio(0x60, 2, 0x10000), "wider than the length"},
  };
  for (const Case& c : bad) {
    auto s = c.m.Validate("T");
    ASSERT_FALSE(s) << Describe(c.m);
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(s.error().Message(), HasSubstr(c.why)) << Describe(c.m);
    EXPECT_THAT(s.error().Message(), HasSubstr(Describe(c.m)));
  }
  for (const DoorbellMatch& ok : {Mmio(0x1000, 4), Mmio(0x1003, 1), Mmio(0x1008, 8, ~0ull),
                                  Mmio(0x1001, kDoorbellAnyLength), Pio(0x3f8, 1, 0xff),
                                  Pio(0xfffe, 2), Pio(0x61, 2), Pio(0xffff, kDoorbellAnyLength)}) {
    EXPECT_TRUE(ok.Validate("T")) << Describe(ok);
  }
}

TEST(DoorbellMatchTest, CollisionsFollowKvmsRule) {
  EXPECT_TRUE(Mmio(0x1000, 4).CollidesWith(Mmio(0x1000, 4)));
  EXPECT_TRUE(Mmio(0x1000, 4, 1).CollidesWith(Mmio(0x1000, 4, 1)));
  EXPECT_TRUE(Mmio(0x1000, 4, 1).CollidesWith(Mmio(0x1000, 4)));  // a wildcard takes all values
  EXPECT_TRUE(Mmio(0x1000, kDoorbellAnyLength).CollidesWith(Mmio(0x1000, 2, 7)));
  EXPECT_FALSE(Mmio(0x1000, 4, 1).CollidesWith(Mmio(0x1000, 4, 2)));  // one per queue: fine
  EXPECT_FALSE(Mmio(0x1000, 4).CollidesWith(Mmio(0x1000, 2)));
  EXPECT_FALSE(Mmio(0x1000, 4).CollidesWith(Mmio(0x1004, 4)));
  EXPECT_FALSE(Mmio(0x60, 1).CollidesWith(Pio(0x60, 1)));
}

TEST(DoorbellMatchTest, OnlyExactWritesRing) {
  const uint8_t two[] = {0x34, 0x12};
  IoExit out = Out(0x60, 2, two);
  EXPECT_TRUE(Pio(0x60, 2).Matches(out));
  EXPECT_TRUE(Pio(0x60, 2, 0x1234).Matches(out));
  EXPECT_FALSE(Pio(0x60, 2, 0x1235).Matches(out));
  EXPECT_FALSE(Pio(0x60, 1).Matches(out));
  EXPECT_TRUE(Pio(0x60, kDoorbellAnyLength).Matches(out));
  EXPECT_FALSE(Pio(0x61, 2).Matches(out));
  EXPECT_FALSE(Mmio(0x60, 2).Matches(out));
  IoExit in = out;
  in.is_write = false;
  EXPECT_FALSE(Pio(0x60, 2).Matches(in));
  IoExit rep = out;
  rep.count = 2;
  EXPECT_FALSE(Pio(0x60, 2).Matches(rep)) << "string I/O never rings";

  EXPECT_TRUE(Mmio(0x1000, 4, 0xdeadbeef).Matches(Write(0x1000, 4, 0xdeadbeef)));
  EXPECT_FALSE(Mmio(0x1000, 4, 0xdeadbeef).Matches(Write(0x1000, 4, 0xdeadbeee)));
  EXPECT_FALSE(Mmio(0x1000, 4).Matches(Write(0x1002, 2, 0)));
  EXPECT_FALSE(Mmio(0x1000, 4).Matches(MmioExit{0x1000, 4, false, 0}));
  EXPECT_TRUE(Mmio(0x1000, kDoorbellAnyLength).Matches(Write(0x1000, 8, 5)));
}

// Records the ops calls; `fail` makes the next call of that name fail once.
struct OpsLog {
  std::vector<std::string> calls;
  std::string fail;
};

class FakeOps final : public DoorbellOps {
 public:
  explicit FakeOps(std::shared_ptr<OpsLog> log) : log_(std::move(log)) {}
  Status Register(const DoorbellMatch& m, const Event& e) override { return Call("register", m, e); }
  Status Unregister(const DoorbellMatch& m, const Event& e) override {
    return Call("unregister", m, e);
  }

 private:
  Status Call(const std::string& what, const DoorbellMatch& m, const Event& e) {
    if (!e.valid()) return Error::Make(ErrorCode::kInvalidArgument, "FAKE", "invalid event");
    if (log_->fail == what) {
      log_->fail.clear();
      return Error::Errno("FAKE_DOORBELL", 17);
    }
    log_->calls.push_back(what + " " + Describe(m));
    return Ok();
  }
  std::shared_ptr<OpsLog> log_;
};

class KernelDoorbellsTest : public ::testing::Test {
 protected:
  std::shared_ptr<OpsLog> log_ = std::make_shared<OpsLog>();
  std::unique_ptr<KernelDoorbells> doorbells_ =
      KernelDoorbells::Create(std::make_unique<FakeOps>(log_), {.any_length = false});
};

TEST_F(KernelDoorbellsTest, RegisterAndReleaseReachTheOpsWithTheMatch) {
  auto r = doorbells_->Register(Mmio(0xfe000000, 4, 3));
  ASSERT_TRUE(r.has_value()) << r.error().Message();
  EXPECT_EQ((*r)->match(), Mmio(0xfe000000, 4, 3));
  EXPECT_TRUE((*r)->event().valid());
  EXPECT_EQ(doorbells_->size(), 1u);
  ASSERT_TRUE((*r)->Release());
  EXPECT_EQ((*r)->Release().error().code, ErrorCode::kAlreadyReleased);
  EXPECT_EQ(doorbells_->size(), 0u);
  EXPECT_THAT(log_->calls, ElementsAre("register mmio 0xfe000000/4 = 0x3",
                                       "unregister mmio 0xfe000000/4 = 0x3"));
}

TEST_F(KernelDoorbellsTest, BadMatchesCollisionsAndAnyLengthNeverReachTheOps) {
  auto a = doorbells_->Register(Pio(0x60, 1));
  ASSERT_TRUE(a.has_value());
  log_->calls.clear();
  auto dup = doorbells_->Register(Pio(0x60, 1, 5));
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, ErrorCode::kOverlap);
  EXPECT_THAT(dup.error().Message(), HasSubstr("collides with pio 0x60/1"));
  EXPECT_EQ(doorbells_->Register(Mmio(0x1001, 2)).error().code, ErrorCode::kInvalidArgument);
  auto any = doorbells_->Register(Mmio(0x2000, kDoorbellAnyLength));
  ASSERT_FALSE(any.has_value());
  EXPECT_EQ(any.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(any.error().Message(), HasSubstr("any length"));
  EXPECT_FALSE(doorbells_->supports_any_length());
  EXPECT_THAT(log_->calls, IsEmpty());
  EXPECT_EQ(doorbells_->size(), 1u);
  // A released registration frees its slot.
  a->reset();
  EXPECT_TRUE(doorbells_->Register(Pio(0x60, 1, 5)).has_value());
}

TEST_F(KernelDoorbellsTest, AFailedRegisterLeavesNothing) {
  log_->fail = "register";
  auto r = doorbells_->Register(Mmio(0x3000, 8));
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "FAKE_DOORBELL");
  EXPECT_EQ(doorbells_->size(), 0u);
  EXPECT_TRUE(doorbells_->Register(Mmio(0x3000, 8)).has_value()) << "the slot was not kept";
}

TEST_F(KernelDoorbellsTest, AFailedUnregisterOnDestructionGoesToTheHandler) {
  std::vector<Error> reported;
  doorbells_->SetErrorHandler([&reported](const Error& e) { reported.push_back(e); });
  auto r = doorbells_->Register(Mmio(0x4000, 2));
  ASSERT_TRUE(r.has_value());
  log_->fail = "unregister";
  r->reset();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_STREQ(reported[0].operation, "FAKE_DOORBELL");
  EXPECT_EQ(doorbells_->size(), 0u) << "the registration is gone from the table all the same";
}

TEST_F(KernelDoorbellsTest, RegistrationsOutlivingShutdownFailWithPartitionGone) {
  auto r = doorbells_->Register(Mmio(0x5000, 4));
  ASSERT_TRUE(r.has_value());
  log_->calls.clear();
  doorbells_->Shutdown();
  EXPECT_EQ((*r)->Release().error().code, ErrorCode::kPartitionGone);
  EXPECT_EQ(doorbells_->Register(Mmio(0x6000, 4)).error().code, ErrorCode::kPartitionGone);
  doorbells_.reset();
  EXPECT_TRUE((*r)->event().Signal()) << "the event itself still works";
  r->reset();
  EXPECT_THAT(log_->calls, IsEmpty());
}

TEST(UserModeDoorbellsTest, DispatchSignalsTheMatchingRegistrationAndConsumesTheExit) {
  auto doorbells = UserModeDoorbells::Create();
  EXPECT_TRUE(doorbells->supports_any_length());
  auto q0 = doorbells->Register(Mmio(0xfeb00000, 4, 0));
  auto q1 = doorbells->Register(Mmio(0xfeb00000, 4, 1));
  auto port = doorbells->Register(Pio(0x510, kDoorbellAnyLength));
  ASSERT_TRUE(q0 && q1 && port);

  EXPECT_TRUE(doorbells->Dispatch(VcpuExit{Write(0xfeb00000, 4, 1)}));
  EXPECT_TRUE(doorbells->Dispatch(Write(0xfeb00000, 4, 1)));
  EXPECT_TRUE(doorbells->Dispatch(Write(0xfeb00000, 4, 0)));
  EXPECT_FALSE(doorbells->Dispatch(Write(0xfeb00000, 4, 2))) << "no queue 2";
  EXPECT_FALSE(doorbells->Dispatch(Write(0xfeb00000, 2, 1))) << "wrong width";
  EXPECT_FALSE(doorbells->Dispatch(MmioExit{0xfeb00000, 4, false, 0})) << "reads never ring";
  const uint8_t b[] = {7, 0};
  EXPECT_TRUE(doorbells->Dispatch(Out(0x510, 2, b)));
  EXPECT_TRUE(doorbells->Dispatch(Out(0x510, 1, b)));
  EXPECT_FALSE(doorbells->Dispatch(VcpuExit{HaltExit{}}));

  EXPECT_EQ(*(*q1)->event().TryWait(), 2u);  // two rings before the device looked: coalesced
  EXPECT_EQ(*(*q0)->event().TryWait(), 1u);
  EXPECT_EQ(*(*port)->event().TryWait(), 2u);

  // A released doorbell no longer rings; its exit goes back to the VMM.
  ASSERT_TRUE((*q1)->Release());
  EXPECT_FALSE(doorbells->Dispatch(Write(0xfeb00000, 4, 1)));
  EXPECT_EQ(*(*q1)->event().TryWait(), 0u);
}

TEST(UserModeDoorbellsTest, SameErrorsAsTheKernelPath) {
  auto doorbells = UserModeDoorbells::Create();
  auto a = doorbells->Register(Mmio(0x1000, kDoorbellAnyLength));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(doorbells->Register(Mmio(0x1000, 4, 9)).error().code, ErrorCode::kOverlap);
  EXPECT_EQ(doorbells->Register(Mmio(0x1000, 0)).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE((*a)->Release());
  EXPECT_EQ((*a)->Release().error().code, ErrorCode::kAlreadyReleased);
  auto b = doorbells->Register(Mmio(0x2000, 4));
  ASSERT_TRUE(b.has_value());
  doorbells.reset();
  EXPECT_EQ((*b)->Release().error().code, ErrorCode::kPartitionGone);
}

// Device threads register and drop doorbells on their own addresses while dispatcher threads
// ring them: a ring of a live registration reaches its event exactly once, rings of dropped or
// never-registered addresses are not consumed, and nothing is signalled twice.
TEST(UserModeDoorbellsTest, ChurnRacingDispatchLosesAndInventsNothing) {
  auto doorbells = UserModeDoorbells::Create();
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> consumed{0};
  std::vector<std::thread> ringers;
  for (int t = 0; t < 2; ++t) {
    ringers.emplace_back([&, t] {
      uint64_t n = 0;
      while (!stop.load()) {
        for (int d = 0; d < kThreads; ++d) {
          if (doorbells->Dispatch(Write(0x10000 + 0x1000 * d + 8 * t, 8, 1))) ++n;
        }
      }
      consumed += n;
    });
  }
  std::atomic<uint64_t> received{0};
  std::vector<std::thread> devices;
  for (int d = 0; d < kThreads; ++d) {
    devices.emplace_back([&, d] {
      for (int round = 0; round < kRounds; ++round) {
        std::vector<std::unique_ptr<DoorbellRegistration>> mine;
        for (int t = 0; t < 2; ++t) {
          auto r = doorbells->Register(Mmio(0x10000 + 0x1000 * d + 8 * t, 8, 1));
          ASSERT_TRUE(r.has_value()) << r.error().Message();
          mine.push_back(std::move(*r));
        }
        for (auto& r : mine) {
          ASSERT_TRUE(r->Release());
          received += *r->event().TryWait();  // after Release nothing can add to it
        }
      }
    });
  }
  for (auto& th : devices) th.join();
  stop = true;
  for (auto& th : ringers) th.join();
  EXPECT_EQ(received.load(), consumed.load());
}

}  // namespace
}  // namespace virt
