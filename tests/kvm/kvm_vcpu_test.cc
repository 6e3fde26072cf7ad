// KvmVcpu against a mocked KvmIoctl: creation and CPUID, exit decoding, completions, cancel, registers and MSRs.
#include "mock_kvm_ioctl.h"  // first: it brings in the KVM uapi headers the backend uses

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

namespace virt::kvm::test {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::testing::InSequence;
using ::testing::Invoke;

class KvmVcpuTest : public KvmMockTest {
 protected:
  void SetUp() override {
    hv_ = NewHypervisor();
    ASSERT_NE(hv_, nullptr);
    part_ = NewPartition(*hv_, {.vcpu_count = 4, .irqchip = true});
    ASSERT_NE(part_, nullptr);
  }
  void TearDown() override {
    vcpu_.reset();
    part_.reset();
    hv_.reset();
    KvmMockTest::TearDown();
  }

  // Creates vCPU 0 into vcpu_ and returns its kvm_run.
  kvm_run* CreateVcpu0() {
    auto v = part_->CreateVcpu(0);
    EXPECT_TRUE(v.has_value()) << v.error().Message();
    if (!v) return nullptr;
    vcpu_ = std::move(*v);
    return fake().run(kVcpuFdBase);
  }

  // Makes the next KVM_RUN on vCPU 0 produce the exit `fill` writes.
  template <typename Fill>
  void NextExit(kvm_run* run, Fill fill) {
    EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([run, fill](int) -> Status {
      fill(run);
      return Ok();
    });
  }

  VcpuExit RunOk() {
    auto exit = vcpu_->Run();
    EXPECT_TRUE(exit.has_value()) << exit.error().Message();
    ::testing::Mock::VerifyAndClearExpectations(&mock());
    return exit ? *exit : VcpuExit{UnknownExit{~0u}};
  }

  static uint8_t* Bytes(kvm_run* run) { return reinterpret_cast<uint8_t*>(run); }

  std::unique_ptr<KvmHypervisor> hv_;
  std::unique_ptr<Partition> part_;
  std::unique_ptr<Vcpu> vcpu_;
};

TEST_F(KvmVcpuTest, CreateMapsKvmRunAndSetsCpuidWithTheApicId) {
  {
    InSequence seq;
    EXPECT_CALL(mock(), CreateVcpu(kVmFd, 2ul));
    EXPECT_CALL(mock(), MapRun(kVcpuFdBase + 2, static_cast<size_t>(kRunMmapSize)));
    EXPECT_CALL(mock(), SetCpuid2(kVcpuFdBase + 2, _));
  }
  auto vcpu = part_->CreateVcpu(2);
  ASSERT_TRUE(vcpu.has_value()) << vcpu.error().Message();
  EXPECT_EQ((*vcpu)->index(), 2u);

  const auto want = FakeKvmState::DefaultCpuid();
  const auto got = fake().CpuidEntriesSet(kVcpuFdBase + 2);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    kvm_cpuid_entry2 expect = want[i];
    if (expect.function == 1) expect.ebx = (expect.ebx & 0x00FFFFFF) | (2u << 24);
    if (expect.function == 0xB) expect.edx = 2;
    SCOPED_TRACE(::testing::Message() << "leaf 0x" << std::hex << expect.function << " index "
                                      << expect.index);
    EXPECT_EQ(got[i].function, expect.function);
    EXPECT_EQ(got[i].index, expect.index);
    EXPECT_EQ(got[i].flags, expect.flags);
    EXPECT_EQ(got[i].eax, expect.eax);
    EXPECT_EQ(got[i].ebx, expect.ebx);
    EXPECT_EQ(got[i].ecx, expect.ecx);
    EXPECT_EQ(got[i].edx, expect.edx);
  }
  // Leaf 1 keeps its low EBX bits (CLFLUSH size, logical count) and gets APIC ID 2.
  EXPECT_EQ(got[1].ebx, 0x02010800u);
}

TEST_F(KvmVcpuTest, EachVcpuGetsItsOwnApicIdAndKvmRun) {
  auto v0 = part_->CreateVcpu(0);
  auto v3 = part_->CreateVcpu(3);
  ASSERT_TRUE(v0.has_value() && v3.has_value());
  EXPECT_EQ(fake().CpuidEntriesSet(kVcpuFdBase)[1].ebx >> 24, 0u);
  EXPECT_EQ(fake().CpuidEntriesSet(kVcpuFdBase + 3)[1].ebx >> 24, 3u);
  EXPECT_EQ(fake().CpuidEntriesSet(kVcpuFdBase + 3)[2].edx, 3u);
  EXPECT_NE(fake().run(kVcpuFdBase), fake().run(kVcpuFdBase + 3));
  EXPECT_EQ(fake().mapped_runs(), 2u);
}

TEST_F(KvmVcpuTest, FailedCreationReleasesWhatItTook) {
  fake().FailCall("mmap(kvm_run)", 0, ENOMEM);
  auto a = part_->CreateVcpu(0);
  ASSERT_FALSE(a.has_value());
  EXPECT_STREQ(a.error().operation, "mmap(kvm_run)");
  EXPECT_EQ(fake().close_count(kVcpuFdBase), 1);

  fake().FailCall("KVM_SET_CPUID2", 0, EINVAL);
  auto b = part_->CreateVcpu(0);
  ASSERT_FALSE(b.has_value());
  EXPECT_STREQ(b.error().operation, "KVM_SET_CPUID2");
  EXPECT_EQ(fake().close_count(kVcpuFdBase), 2);
  EXPECT_EQ(fake().mapped_runs(), 0u);
}

TEST_F(KvmVcpuTest, DestroyingTheVcpuUnmapsAndCloses) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  {
    InSequence seq;
    EXPECT_CALL(mock(), UnmapRun(fake().run(kVcpuFdBase), static_cast<size_t>(kRunMmapSize)));
    EXPECT_CALL(mock(), Close(kVcpuFdBase));
  }
  vcpu_.reset();
  ::testing::Mock::VerifyAndClearExpectations(&mock());
}

TEST_F(KvmVcpuTest, IoOutExit) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_IO;
    r->io.direction = KVM_EXIT_IO_OUT;
    r->io.size = 2;
    r->io.port = 0x3f8;
    r->io.count = 3;
    r->io.data_offset = kIoDataOffset;
    const uint8_t data[] = {0x34, 0x12, 0x78, 0x56, 0xbc, 0x9a};
    std::memcpy(Bytes(r) + kIoDataOffset, data, sizeof data);
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<IoExit>(exit)) << ExitName(exit);
  const IoExit& io = std::get<IoExit>(exit);
  EXPECT_EQ(io.port, 0x3f8);
  EXPECT_EQ(io.size, 2);
  EXPECT_EQ(io.count, 3u);
  EXPECT_TRUE(io.is_write);
  ASSERT_EQ(io.data.size(), 6u);
  EXPECT_EQ(io.data.data(), Bytes(run) + kIoDataOffset);
  EXPECT_THAT(io.data, ::testing::ElementsAre(0x34, 0x12, 0x78, 0x56, 0xbc, 0x9a));
  EXPECT_EQ(io.value(), 0x1234u);
  EXPECT_STREQ(ExitName(exit), "io");
  // An OUT needs no answer.
  EXPECT_THAT(vcpu_->CompleteIoIn(std::vector<uint8_t>(6)),
              IsErrorCode(ErrorCode::kFailedPrecondition));
}

TEST_F(KvmVcpuTest, IoInExitAndCompletion) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  EXPECT_THAT(vcpu_->CompleteIoIn(std::vector<uint8_t>(4)),
              IsErrorCode(ErrorCode::kFailedPrecondition));  // nothing ran yet
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_IO;
    r->io.direction = KVM_EXIT_IO_IN;
    r->io.size = 4;
    r->io.port = 0xcfc;
    r->io.count = 2;
    r->io.data_offset = kIoDataOffset + 64;
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<IoExit>(exit)) << ExitName(exit);
  const IoExit& io = std::get<IoExit>(exit);
  EXPECT_FALSE(io.is_write);
  EXPECT_EQ(io.port, 0xcfc);
  EXPECT_EQ(io.size, 4);
  EXPECT_EQ(io.count, 2u);

  EXPECT_THAT(vcpu_->CompleteIoIn(std::vector<uint8_t>(4)),
              IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(vcpu_->CompleteIoIn(std::vector<uint8_t>(9)),
              IsErrorCode(ErrorCode::kInvalidArgument));
  EXPECT_THAT(vcpu_->CompleteMmioRead(1), IsErrorCode(ErrorCode::kFailedPrecondition));
  const std::vector<uint8_t> answer = {1, 2, 3, 4, 5, 6, 7, 8};
  VIRT_EXPECT_OK(vcpu_->CompleteIoIn(answer));
  EXPECT_EQ(std::memcmp(Bytes(run) + kIoDataOffset + 64, answer.data(), answer.size()), 0);
  EXPECT_EQ(Bytes(run)[kIoDataOffset + 72], 0);  // nothing past the answer
  // Completed: a second answer has nothing to complete.
  EXPECT_THAT(vcpu_->CompleteIoIn(answer), IsErrorCode(ErrorCode::kFailedPrecondition));
}

TEST_F(KvmVcpuTest, MmioWriteExit) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_MMIO;
    r->mmio.phys_addr = 0xfebf0010;
    r->mmio.len = 4;
    r->mmio.is_write = 1;
    const uint8_t data[8] = {0xef, 0xbe, 0xad, 0xde, 0x11, 0x22, 0x33, 0x44};
    std::memcpy(r->mmio.data, data, sizeof data);
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<MmioExit>(exit)) << ExitName(exit);
  const MmioExit& mmio = std::get<MmioExit>(exit);
  EXPECT_EQ(mmio.address, 0xfebf0010u);
  EXPECT_EQ(mmio.size, 4);
  EXPECT_TRUE(mmio.is_write);
  EXPECT_EQ(mmio.value, 0xdeadbeefu);  // only `len` bytes
  EXPECT_THAT(vcpu_->CompleteMmioRead(0), IsErrorCode(ErrorCode::kFailedPrecondition));
}

TEST_F(KvmVcpuTest, MmioReadExitAndCompletion) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  EXPECT_THAT(vcpu_->CompleteMmioRead(0), IsErrorCode(ErrorCode::kFailedPrecondition));
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_MMIO;
    r->mmio.phys_addr = 0xd0000000;
    r->mmio.len = 2;
    r->mmio.is_write = 0;
    std::memset(r->mmio.data, 0xaa, sizeof r->mmio.data);
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<MmioExit>(exit)) << ExitName(exit);
  const MmioExit& mmio = std::get<MmioExit>(exit);
  EXPECT_EQ(mmio.address, 0xd0000000u);
  EXPECT_EQ(mmio.size, 2);
  EXPECT_FALSE(mmio.is_write);
  EXPECT_THAT(vcpu_->CompleteIoIn(std::vector<uint8_t>(2)),
              IsErrorCode(ErrorCode::kFailedPrecondition));
  VIRT_EXPECT_OK(vcpu_->CompleteMmioRead(0x1122334455667788ull));
  EXPECT_THAT(run->mmio.data, ::testing::ElementsAre(0x88, 0x77, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa));
  EXPECT_THAT(vcpu_->CompleteMmioRead(0), IsErrorCode(ErrorCode::kFailedPrecondition));
}

TEST_F(KvmVcpuTest, EightByteMmioReadFillsAllOfData) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_MMIO;
    r->mmio.phys_addr = 0xd0000008;
    r->mmio.len = 8;
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<MmioExit>(exit));
  VIRT_EXPECT_OK(vcpu_->CompleteMmioRead(0x1122334455667788ull));
  uint64_t v;
  std::memcpy(&v, run->mmio.data, 8);
  EXPECT_EQ(v, 0x1122334455667788ull);
}

TEST_F(KvmVcpuTest, RunForgetsAnUnansweredIn) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_IO;
    r->io.direction = KVM_EXIT_IO_IN;
    r->io.size = 1;
    r->io.count = 1;
    r->io.data_offset = kIoDataOffset;
  });
  ASSERT_TRUE(std::holds_alternative<IoExit>(RunOk()));
  NextExit(run, [](kvm_run* r) { r->exit_reason = KVM_EXIT_HLT; });
  ASSERT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
  EXPECT_THAT(vcpu_->CompleteIoIn(std::vector<uint8_t>(1)),
              IsErrorCode(ErrorCode::kFailedPrecondition));
}

TEST_F(KvmVcpuTest, HaltShutdownAndUnknownExits) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) { r->exit_reason = KVM_EXIT_HLT; });
  VcpuExit halt = RunOk();
  EXPECT_TRUE(std::holds_alternative<HaltExit>(halt)) << ExitName(halt);

  NextExit(run, [](kvm_run* r) { r->exit_reason = KVM_EXIT_SHUTDOWN; });
  VcpuExit shutdown = RunOk();
  EXPECT_TRUE(std::holds_alternative<ShutdownExit>(shutdown)) << ExitName(shutdown);

  for (uint32_t reason : {uint32_t{KVM_EXIT_DEBUG}, uint32_t{KVM_EXIT_SYSTEM_EVENT}, 0x1234u}) {
    NextExit(run, [reason](kvm_run* r) { r->exit_reason = reason; });
    VcpuExit unknown = RunOk();
    ASSERT_TRUE(std::holds_alternative<UnknownExit>(unknown)) << ExitName(unknown);
    EXPECT_EQ(std::get<UnknownExit>(unknown).reason, reason);
  }
}

TEST_F(KvmVcpuTest, InternalErrorExit) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    r->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    r->internal.ndata = 3;
    r->internal.data[0] = 0x11;
    r->internal.data[1] = 0x22;
    r->internal.data[2] = 0x33;
    r->internal.data[3] = 0x44;  // beyond ndata
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<InternalErrorExit>(exit)) << ExitName(exit);
  const auto& e = std::get<InternalErrorExit>(exit);
  EXPECT_EQ(e.suberror, static_cast<uint32_t>(KVM_INTERNAL_ERROR_EMULATION));
  EXPECT_EQ(e.ndata, 3u);
  EXPECT_THAT(e.data, ::testing::ElementsAre(0x11, 0x22, 0x33, 0));
}

TEST_F(KvmVcpuTest, InternalErrorWithMoreDataThanFitsKeepsTheFirstFour) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    r->internal.suberror = 1;
    r->internal.ndata = 6;
    for (uint64_t i = 0; i < 6; ++i) r->internal.data[i] = i + 1;
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<InternalErrorExit>(exit));
  const auto& e = std::get<InternalErrorExit>(exit);
  EXPECT_THAT(e.data, ::testing::ElementsAre(1, 2, 3, 4));
  EXPECT_LE(e.ndata, e.data.size()) << "ndata must not index past data";
}

TEST_F(KvmVcpuTest, FailEntryExit) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  NextExit(run, [](kvm_run* r) {
    r->exit_reason = KVM_EXIT_FAIL_ENTRY;
    r->fail_entry.hardware_entry_failure_reason = 0x80000021;
  });
  VcpuExit exit = RunOk();
  ASSERT_TRUE(std::holds_alternative<InternalErrorExit>(exit)) << ExitName(exit);
  const auto& e = std::get<InternalErrorExit>(exit);
  EXPECT_EQ(e.suberror, static_cast<uint32_t>(KVM_EXIT_FAIL_ENTRY));
  EXPECT_EQ(e.ndata, 1u);
  EXPECT_EQ(e.data[0], 0x80000021u);
}

TEST_F(KvmVcpuTest, IntrExitAndEintrReenterKvmRun) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  {
    InSequence seq;
    EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([run](int) -> Status {
      run->exit_reason = KVM_EXIT_INTR;
      return Ok();
    });
    EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([](int) -> Status {
      return Error::Errno("KVM_RUN", EINTR);  // a foreign signal
    });
    EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([](int) -> Status {
      return Error::Errno("KVM_RUN", EAGAIN);
    });
    EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([run](int) -> Status {
      run->exit_reason = KVM_EXIT_HLT;
      return Ok();
    });
  }
  VcpuExit exit = RunOk();
  EXPECT_TRUE(std::holds_alternative<HaltExit>(exit)) << ExitName(exit);
}

TEST_F(KvmVcpuTest, OtherRunErrorsAreReturned) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([](int) -> Status {
    return Error::Errno("KVM_RUN", EFAULT);
  });
  auto exit = vcpu_->Run();
  ASSERT_FALSE(exit.has_value());
  EXPECT_STREQ(exit.error().operation, "KVM_RUN");
  EXPECT_EQ(exit.error().native_code, EFAULT);
}

TEST_F(KvmVcpuTest, CancelBeforeRunReturnsCancelledWithoutEnteringAndIsConsumed) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  EXPECT_CALL(mock(), Run(_)).Times(0);
  vcpu_->Cancel();
  EXPECT_EQ(__atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST), 1);
  VcpuExit exit = RunOk();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(exit)) << ExitName(exit);
  EXPECT_STREQ(ExitName(exit), "cancelled");
  EXPECT_EQ(run->immediate_exit, 0);

  // Consumed: the next Run enters the guest.
  NextExit(run, [](kvm_run* r) { r->exit_reason = KVM_EXIT_HLT; });
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
}

TEST_F(KvmVcpuTest, TwoCancelsBeforeRunCancelOnce) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  vcpu_->Cancel();
  vcpu_->Cancel();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(RunOk()));
  NextExit(run, [](kvm_run* r) { r->exit_reason = KVM_EXIT_HLT; });
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
}

// The mocked KVM_RUN blocks like the real one until the cancel is visible, then returns EINTR as
// KVM does for immediate_exit. The real kick is a signal to the vCPU thread; the mock ignores it
// (the backend's handler does nothing) and waits for the test to say Cancel() has returned.
TEST_F(KvmVcpuTest, CancelFromAnotherThreadWhileInKvmRun) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);

  std::promise<void> entered;
  std::mutex mu;
  std::condition_variable cv;
  bool cancel_returned = false;
  bool saw_immediate_exit = false;
  EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([&](int) -> Status {
    entered.set_value();
    std::unique_lock lock(mu);
    // A kick signal may wake this wait spuriously; the predicate keeps it honest.
    cv.wait(lock, [&] {
      return cancel_returned && __atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST) == 1;
    });
    saw_immediate_exit = true;
    return Error::Errno("KVM_RUN", EINTR);
  });

  std::future<Result<VcpuExit>> result =
      std::async(std::launch::async, [this] { return vcpu_->Run(); });
  entered.get_future().wait();
  vcpu_->Cancel();
  {
    std::lock_guard lock(mu);
    cancel_returned = true;
  }
  cv.notify_all();
  Result<VcpuExit> exit = result.get();
  ASSERT_TRUE(exit.has_value()) << exit.error().Message();
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(*exit)) << ExitName(*exit);
  EXPECT_TRUE(saw_immediate_exit);
  EXPECT_EQ(__atomic_load_n(&run->immediate_exit, __ATOMIC_SEQ_CST), 0);
  ::testing::Mock::VerifyAndClearExpectations(&mock());

  // The cancel was consumed by that Run: the next one calls KVM_RUN again.
  NextExit(run, [](kvm_run* r) { r->exit_reason = KVM_EXIT_HLT; });
  EXPECT_TRUE(std::holds_alternative<HaltExit>(RunOk()));
}

// A cancel that races with a real exit does not lose the exit: Run returns it, and the next Run
// returns CancelledExit without entering the guest.
TEST_F(KvmVcpuTest, CancelDuringAnExitThatCompletesIsDeliveredByTheNextRun) {
  kvm_run* run = CreateVcpu0();
  ASSERT_NE(run, nullptr);
  std::promise<void> entered;
  std::mutex mu;
  std::condition_variable cv;
  bool cancel_returned = false;
  EXPECT_CALL(mock(), Run(kVcpuFdBase)).WillOnce([&](int) -> Status {
    entered.set_value();
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return cancel_returned; });
    run->exit_reason = KVM_EXIT_HLT;
    return Ok();
  });
  auto result = std::async(std::launch::async, [this] { return vcpu_->Run(); });
  entered.get_future().wait();
  vcpu_->Cancel();
  {
    std::lock_guard lock(mu);
    cancel_returned = true;
  }
  cv.notify_all();
  Result<VcpuExit> first = result.get();
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(std::holds_alternative<HaltExit>(*first)) << ExitName(*first);
  ::testing::Mock::VerifyAndClearExpectations(&mock());
  EXPECT_CALL(mock(), Run(_)).Times(0);
  EXPECT_TRUE(std::holds_alternative<CancelledExit>(RunOk()));
}

TEST_F(KvmVcpuTest, RegistersMapFieldByFieldToKvmRegs) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  Registers r;
  uint64_t v = 0x1000;
  for (uint64_t* f : {&r.rax, &r.rbx, &r.rcx, &r.rdx, &r.rsi, &r.rdi, &r.rsp, &r.rbp, &r.r8,
                      &r.r9, &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15, &r.rip, &r.rflags}) {
    *f = ++v;
  }
  VIRT_ASSERT_OK(vcpu_->SetRegisters(r));
  const kvm_regs& k = fake().regs(kVcpuFdBase);
  EXPECT_EQ(k.rax, r.rax);
  EXPECT_EQ(k.rbx, r.rbx);
  EXPECT_EQ(k.rcx, r.rcx);
  EXPECT_EQ(k.rdx, r.rdx);
  EXPECT_EQ(k.rsi, r.rsi);
  EXPECT_EQ(k.rdi, r.rdi);
  EXPECT_EQ(k.rsp, r.rsp);
  EXPECT_EQ(k.rbp, r.rbp);
  EXPECT_EQ(k.r8, r.r8);
  EXPECT_EQ(k.r9, r.r9);
  EXPECT_EQ(k.r10, r.r10);
  EXPECT_EQ(k.r11, r.r11);
  EXPECT_EQ(k.r12, r.r12);
  EXPECT_EQ(k.r13, r.r13);
  EXPECT_EQ(k.r14, r.r14);
  EXPECT_EQ(k.r15, r.r15);
  EXPECT_EQ(k.rip, r.rip);
  EXPECT_EQ(k.rflags, r.rflags);

  auto back = vcpu_->GetRegisters();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, r);

  // Reading what the kernel holds, independent of SetRegisters.
  kvm_regs& held = fake().regs(kVcpuFdBase);
  held.rsi = 0xaaaa;
  held.rdi = 0xbbbb;
  held.rip = 0xfff0;
  auto read = vcpu_->GetRegisters();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->rsi, 0xaaaau);
  EXPECT_EQ(read->rdi, 0xbbbbu);
  EXPECT_EQ(read->rip, 0xfff0u);
}

SegmentRegister Segment(uint64_t seed) {
  SegmentRegister s;
  s.base = 0x10000 * seed;
  s.limit = 0xfff0u + static_cast<uint32_t>(seed);
  s.selector = static_cast<uint16_t>(8 * seed);
  s.type = static_cast<uint8_t>(seed & 0xf);
  s.present = 1;
  s.dpl = static_cast<uint8_t>(seed & 3);
  s.db = seed & 1;
  s.s = 1;
  s.l = (seed >> 1) & 1;
  s.g = 1;
  s.avl = (seed >> 2) & 1;
  s.unusable = seed == 7;
  return s;
}

void ExpectSegment(const kvm_segment& k, const SegmentRegister& s, const char* name) {
  SCOPED_TRACE(name);
  EXPECT_EQ(k.base, s.base);
  EXPECT_EQ(k.limit, s.limit);
  EXPECT_EQ(k.selector, s.selector);
  EXPECT_EQ(k.type, s.type);
  EXPECT_EQ(k.present, s.present);
  EXPECT_EQ(k.dpl, s.dpl);
  EXPECT_EQ(k.db, s.db);
  EXPECT_EQ(k.s, s.s);
  EXPECT_EQ(k.l, s.l);
  EXPECT_EQ(k.g, s.g);
  EXPECT_EQ(k.avl, s.avl);
  EXPECT_EQ(k.unusable != 0, s.unusable);
}

TEST_F(KvmVcpuTest, SpecialRegistersMapFieldByFieldToKvmSregs) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  SpecialRegisters r;
  r.cs = Segment(1), r.ds = Segment(2), r.es = Segment(3), r.fs = Segment(4);
  r.gs = Segment(5), r.ss = Segment(6), r.tr = Segment(7), r.ldt = Segment(8);
  r.gdt = {0x1000, 0x27};
  r.idt = {0x2000, 0xfff};
  r.cr0 = 0x80050033, r.cr2 = 0xdead000, r.cr3 = 0x3000, r.cr4 = 0x6a0, r.cr8 = 0xf;
  r.efer = 0xd01;
  r.apic_base = 0xfee00900;
  VIRT_ASSERT_OK(vcpu_->SetSpecialRegisters(r));

  const kvm_sregs& k = fake().sregs(kVcpuFdBase);
  ExpectSegment(k.cs, r.cs, "cs");
  ExpectSegment(k.ds, r.ds, "ds");
  ExpectSegment(k.es, r.es, "es");
  ExpectSegment(k.fs, r.fs, "fs");
  ExpectSegment(k.gs, r.gs, "gs");
  ExpectSegment(k.ss, r.ss, "ss");
  ExpectSegment(k.tr, r.tr, "tr");
  ExpectSegment(k.ldt, r.ldt, "ldt");
  EXPECT_EQ(k.gdt.base, 0x1000u);
  EXPECT_EQ(k.gdt.limit, 0x27u);
  EXPECT_EQ(k.idt.base, 0x2000u);
  EXPECT_EQ(k.idt.limit, 0xfffu);
  EXPECT_EQ(k.cr0, r.cr0);
  EXPECT_EQ(k.cr2, r.cr2);
  EXPECT_EQ(k.cr3, r.cr3);
  EXPECT_EQ(k.cr4, r.cr4);
  EXPECT_EQ(k.cr8, r.cr8);
  EXPECT_EQ(k.efer, r.efer);
  EXPECT_EQ(k.apic_base, r.apic_base);
  for (auto word : k.interrupt_bitmap) EXPECT_EQ(word, 0u);

  auto back = vcpu_->GetSpecialRegisters();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, r);
}

TEST_F(KvmVcpuTest, FpuMapsFieldByFieldToKvmFpu) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  FpuState f;
  f.fcw = 0x27f;
  f.fsw = 0x1234;
  f.ftwx = 0xa5;
  f.mxcsr = 0x1fa0;
  for (size_t i = 0; i < f.fpr.size(); ++i) {
    for (size_t j = 0; j < 16; ++j) f.fpr[i][j] = static_cast<uint8_t>(i * 16 + j);
  }
  for (size_t i = 0; i < f.xmm.size(); ++i) {
    for (size_t j = 0; j < 16; ++j) f.xmm[i][j] = static_cast<uint8_t>(0x80 + i * 7 + j);
  }
  VIRT_ASSERT_OK(vcpu_->SetFpu(f));
  const kvm_fpu& k = fake().fpu(kVcpuFdBase);
  EXPECT_EQ(k.fcw, f.fcw);
  EXPECT_EQ(k.fsw, f.fsw);
  EXPECT_EQ(k.ftwx, f.ftwx);
  EXPECT_EQ(k.mxcsr, f.mxcsr);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(std::memcmp(k.fpr[i], f.fpr[i].data(), 16), 0) << "fpr " << i;
  }
  for (size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(std::memcmp(k.xmm[i], f.xmm[i].data(), 16), 0) << "xmm " << i;
  }
  auto back = vcpu_->GetFpu();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, f);
}

TEST_F(KvmVcpuTest, RegisterIoctlErrorsAreReturned) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  fake().FailCall("KVM_GET_REGS", 0, EFAULT);
  auto r = vcpu_->GetRegisters();
  ASSERT_FALSE(r.has_value());
  EXPECT_STREQ(r.error().operation, "KVM_GET_REGS");
  fake().FailCall("KVM_SET_SREGS", 0, EINVAL);
  Status s = vcpu_->SetSpecialRegisters({});
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_SET_SREGS");
  EXPECT_EQ(s.error().native_code, EINVAL);
  fake().FailCall("KVM_GET_FPU", 0, EIO);
  auto f = vcpu_->GetFpu();
  ASSERT_FALSE(f.has_value());
  EXPECT_STREQ(f.error().operation, "KVM_GET_FPU");
}

TEST_F(KvmVcpuTest, GetMsrsSendsIndicesAndReturnsValues) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  fake().msr_values()[0x10] = 0x123456789;
  fake().msr_values()[0xc0000080] = 0xd01;
  fake().msr_values()[0x1b] = 0xfee00900;
  std::vector<MsrEntry> msrs = {{0x10, 0}, {0xc0000080, 0}, {0x1b, 0}};
  VIRT_ASSERT_OK(vcpu_->GetMsrs(msrs));
  auto calls = fake().msr_calls();
  ASSERT_EQ(calls.size(), 1u);
  ASSERT_EQ(calls[0].size(), 3u);  // nmsrs
  EXPECT_EQ(calls[0][0].index, 0x10u);
  EXPECT_EQ(calls[0][1].index, 0xc0000080u);
  EXPECT_EQ(calls[0][2].index, 0x1bu);
  EXPECT_EQ(msrs[0].value, 0x123456789u);
  EXPECT_EQ(msrs[1].value, 0xd01u);
  EXPECT_EQ(msrs[2].value, 0xfee00900u);
}

TEST_F(KvmVcpuTest, SetMsrsSendsIndicesAndValues) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  const std::vector<MsrEntry> msrs = {{0x174, 0x10}, {0x175, 0x8000}, {0xc0000100, 0x7000}};
  EXPECT_CALL(mock(), SetMsrs(kVcpuFdBase, ::testing::Field(&kvm_msrs::nmsrs, 3u)));
  VIRT_ASSERT_OK(vcpu_->SetMsrs(msrs));
  auto calls = fake().msr_calls();
  ASSERT_EQ(calls.size(), 1u);
  ASSERT_EQ(calls[0].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(calls[0][i].index, msrs[i].index);
    EXPECT_EQ(calls[0][i].data, msrs[i].value);
  }
  EXPECT_EQ(fake().msr_values()[0xc0000100], 0x7000u);
}

TEST_F(KvmVcpuTest, PartialMsrAccessNamesTheRefusedMsrInHex) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  fake().SetMsrLimit(1);
  std::vector<MsrEntry> msrs = {{0x10, 0}, {0xc0000080, 0}, {0x1b, 0}};
  Status got = vcpu_->GetMsrs(msrs);
  ASSERT_FALSE(got.has_value());
  EXPECT_STREQ(got.error().operation, "KVM_GET_MSRS");
  EXPECT_THAT(got.error().Message(), HasSubstr("0xc0000080"));

  fake().SetMsrLimit(2);
  Status set = vcpu_->SetMsrs(msrs);
  ASSERT_FALSE(set.has_value());
  EXPECT_STREQ(set.error().operation, "KVM_SET_MSRS");
  EXPECT_THAT(set.error().Message(), HasSubstr("0x1b"));

  fake().SetMsrLimit(0);
  Status none = vcpu_->SetMsrs(msrs);
  ASSERT_FALSE(none.has_value());
  EXPECT_THAT(none.error().Message(), HasSubstr("0x10 "));
}

TEST_F(KvmVcpuTest, EmptyMsrListsMakeNoIoctl) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  EXPECT_CALL(mock(), GetMsrs(_, _)).Times(0);
  EXPECT_CALL(mock(), SetMsrs(_, _)).Times(0);
  VIRT_EXPECT_OK(vcpu_->GetMsrs({}));
  VIRT_EXPECT_OK(vcpu_->SetMsrs({}));
}

TEST_F(KvmVcpuTest, MsrIoctlErrorsAreReturned) {
  ASSERT_NE(CreateVcpu0(), nullptr);
  fake().FailCall("KVM_SET_MSRS", 0, E2BIG);
  const std::vector<MsrEntry> msrs = {{0x174, 1}};
  Status s = vcpu_->SetMsrs(msrs);
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "KVM_SET_MSRS");
  EXPECT_EQ(s.error().native_code, E2BIG);
}

}  // namespace
}  // namespace virt::kvm::test
