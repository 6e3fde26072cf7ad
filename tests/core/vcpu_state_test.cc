// VcpuState / PartitionState: the byte form round-trips every part and refuses every
// malformation; PartwiseVcpuState restores in order, refuses before changing anything and puts
// back what it changed when a part fails.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "virt/partition_state.h"
#include "virt/vcpu_state_control.h"

namespace virt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

VcpuState FullState() {
  VcpuState s;
  s.backend = "kvm";
  const CpuidEntry leaves[] = {{0, 0, 0, 0xd, 1, 2, 3}, {7, 1, kCpuidIndexSignificant, 4, 5, 6, 7}};
  s.cpuid = Cpuid(leaves);
  s.msrs = std::vector<MsrEntry>{{0x10, 0x1234}, {0xc0000080, 0xd01}, {0x1b, 0xfee00900}};
  SpecialRegisters sr;
  sr.cs = {0x1000, 0xffff, 0x08, 0xb, 1, 0, 0, 1, 1, 1, 0, false};
  sr.tr = {0x2000, 0x67, 0x18, 0xb, 1, 0, 0, 0, 0, 0, 0, false};
  sr.ldt.unusable = true;
  sr.gdt = {0x3000, 0x17};
  sr.idt = {0x4000, 0xfff};
  sr.cr0 = 0x80000011, sr.cr3 = 0x5000, sr.cr4 = 0x20, sr.efer = 0x500, sr.apic_base = 0xfee00900;
  s.special_registers = sr;
  Registers r;
  r.rax = 1, r.r15 = 15, r.rip = 0x400000, r.rflags = 0x202;
  s.registers = r;
  s.xcrs = std::vector<XcrEntry>{{0, 7}};
  s.xsave = std::vector<uint8_t>(4096, 0xab);
  s.debug_registers = DebugRegisters{{1, 2, 3, 4}, 0xffff4ff0, 0x401};
  s.mp_state = MpState::kHalted;
  s.lapic = std::vector<uint8_t>(1024, 0x5a);
  VcpuEvents e;
  e.exception = {true, false, 14, true, 2, 0xdead0000};
  e.interrupt = {true, 0x40, false, 1};
  e.nmi = {false, true, true};
  e.smi = {false, false, false, true};
  e.sipi_vector = 0x10;
  e.triple_fault_pending = false;
  s.events = e;
  s.tsc = 123456789;
  return s;
}

TEST(VcpuStateTest, PartsAreListedInRestoreOrder) {
  VcpuState s;
  EXPECT_TRUE(s.parts().empty());
  s.tsc = 1;
  s.cpuid = Cpuid();
  s.lapic = std::vector<uint8_t>(1);
  EXPECT_THAT(s.parts(), ElementsAre(VcpuStatePart::kCpuid, VcpuStatePart::kLapic,
                                     VcpuStatePart::kTsc));
  EXPECT_EQ(FullState().parts().size(), kVcpuRestoreOrder.size());
  for (VcpuStatePart p : kVcpuRestoreOrder) EXPECT_STRNE(ToString(p), "unknown");
}

TEST(VcpuStateTest, TheByteFormRoundTripsEveryPart) {
  const VcpuState s = FullState();
  const std::vector<uint8_t> bytes = SerializeVcpuState(s);
  ASSERT_GE(bytes.size(), 16u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 8), "VIRTVCPU");
  EXPECT_EQ(bytes[8], 1);  // format version 1, little-endian
  auto back = ParseVcpuState(bytes, "kvm");
  ASSERT_TRUE(back.has_value()) << back.error().Message();
  EXPECT_EQ(*back, s);
  // A state with only some parts keeps only those.
  VcpuState partial;
  partial.backend = "whp";
  partial.registers = s.registers;
  auto p = ParseVcpuState(SerializeVcpuState(partial));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(*p, partial);
  EXPECT_FALSE(p->Has(VcpuStatePart::kXsave));
}

TEST(VcpuStateTest, BlobsFromAnotherBackendOrVersionAreRefusedClearly) {
  const std::vector<uint8_t> bytes = SerializeVcpuState(FullState());
  auto other = ParseVcpuState(bytes, "mshv");
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(other.error().Message(), HasSubstr("saved by backend kvm, not mshv"));
  std::vector<uint8_t> v2 = bytes;
  v2[8] = 2;
  EXPECT_THAT(ParseVcpuState(v2).error().Message(), HasSubstr("format version 2"));
  std::vector<uint8_t> magic = bytes;
  magic[0] = 'X';
  EXPECT_THAT(ParseVcpuState(magic).error().Message(), HasSubstr("bad magic"));
  PartitionState partition;
  partition.backend = "kvm";
  EXPECT_THAT(ParseVcpuState(SerializePartitionState(partition)).error().Message(),
              HasSubstr("bad magic")) << "a partition blob is not a vCPU blob";
}

// Every truncation of a valid blob is refused, never read past its end (ASan checks the last).
TEST(VcpuStateTest, EveryTruncationIsRefused) {
  const std::vector<uint8_t> bytes = SerializeVcpuState(FullState());
  size_t accepted = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = ParseVcpuState(std::span(bytes.data(), n));
    if (r) {
      ++accepted;  // a cut exactly between records is a valid, smaller state
      EXPECT_LT(r->parts().size(), kVcpuRestoreOrder.size());
    } else {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    }
  }
  EXPECT_EQ(accepted, kVcpuRestoreOrder.size()) << "only the cuts between records parse";
}

// Writes one record {part, flags, length, payload} after a valid header.
std::vector<uint8_t> WithRecord(uint16_t part, std::vector<uint8_t> payload, uint16_t flags = 0) {
  VcpuState empty;
  empty.backend = "kvm";
  std::vector<uint8_t> b = SerializeVcpuState(empty);
  auto le = [&b](uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  le(part, 2), le(flags, 2), le(payload.size(), 4);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

TEST(VcpuStateTest, MalformedRecordsAreRefusedNamingThePart) {
  struct Case {
    std::vector<uint8_t> bytes;
    const char* why;
  };
  std::vector<uint8_t> tsc(8, 1);
  std::vector<uint8_t> twice = WithRecord(11, tsc);
  twice.insert(twice.end(), {11, 0, 0, 0, 8, 0, 0, 0});
  twice.insert(twice.end(), tsc.begin(), tsc.end());
  const Case cases[] = {
      {WithRecord(99, tsc), "unknown part 99"},
      {WithRecord(11, tsc, 1), "record flags 1"},
      {WithRecord(11, std::vector<uint8_t>(9, 0)), "tsc: 1 unexpected trailing bytes"},
      {WithRecord(11, std::vector<uint8_t>(7, 0)), "tsc: truncated"},
      {twice, "appears twice"},
      {WithRecord(8, {7, 0, 0, 0}), "unknown MP state 7"},
      {WithRecord(2, {2, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
       "2 entries of 16 bytes, but 20 bytes follow"},
      {WithRecord(2, {0xff, 0xff, 0, 0}), "65535 entries, at most 4096"},
      {WithRecord(6, {}), "xsave of 0 bytes"},
      {WithRecord(1, {2, 0, 0, 0, /*leaf*/ 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /*again*/ 1, 0, 0, 0, 0, 0, 0, 0,
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
       "repeated CPUID leaf"},
  };
  for (const Case& c : cases) {
    auto r = ParseVcpuState(c.bytes);
    ASSERT_FALSE(r.has_value()) << c.why;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(r.error().Message(), HasSubstr(c.why));
  }
  // A record longer than what follows.
  std::vector<uint8_t> longer = WithRecord(11, tsc);
  longer[longer.size() - 12] = 9;
  EXPECT_THAT(ParseVcpuState(longer).error().Message(), HasSubstr("claims 9 bytes, 8 remain"));
  // Flag bytes must be 0 or 1; the events record is 44 bytes.
  std::vector<uint8_t> events(44, 0);
  ASSERT_TRUE(ParseVcpuState(WithRecord(10, events)).has_value());
  events[0] = 2;
  EXPECT_THAT(ParseVcpuState(WithRecord(10, events)).error().Message(),
              HasSubstr("events: a flag byte is 2"));
}

TEST(PartitionStateTest, RoundTripAndRefusals) {
  PartitionState s;
  s.backend = "kvm";
  s.clock = ClockState{987654321, 6};
  s.irqchip = std::vector<uint8_t>(3 * 520, 7);
  s.pit = std::vector<uint8_t>(112, 9);
  s.routes = std::vector<RouteState>{{24, MsiMessage::Fixed(1, 0x40)}, {30, std::nullopt}};
  const auto bytes = SerializePartitionState(s);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 8), "VIRTPART");
  auto back = ParsePartitionState(bytes, "kvm");
  ASSERT_TRUE(back.has_value()) << back.error().Message();
  EXPECT_EQ(*back, s);
  EXPECT_THAT(ParsePartitionState(bytes, "whp").error().Message(), HasSubstr("not whp"));
  EXPECT_THAT(ParsePartitionState(SerializeVcpuState(FullState())).error().Message(),
              HasSubstr("bad magic"));
  PartitionState dup = s;
  dup.routes->push_back({24, std::nullopt});
  EXPECT_THAT(ParsePartitionState(SerializePartitionState(dup)).error().Message(),
              HasSubstr("GSI 24 appears twice"));
  for (size_t n = 0; n + 1 < bytes.size(); ++n) {
    auto r = ParsePartitionState(std::span(bytes.data(), n));
    if (r) {
      EXPECT_LT(r->parts().size(), 4u);
    }
  }
}

// A backend's parts over a map: which parts it has, what each holds, and which load fails.
class FakeParts final : public PartwiseVcpuState {
 public:
  std::vector<VcpuStatePart> supported = {VcpuStatePart::kCpuid, VcpuStatePart::kRegisters,
                                          VcpuStatePart::kMpState, VcpuStatePart::kTsc};
  VcpuState now;            // what the "hypervisor" holds
  std::vector<std::string> log;
  std::optional<VcpuStatePart> fail_load;  // this part's load fails (once unless sticky)
  std::optional<VcpuStatePart> fail_save;  // this part's save fails, once
  bool sticky = false;

  std::span<const VcpuStatePart> supported_parts() const override { return supported; }

 protected:
  std::string_view backend_name() const override { return "kvm"; }
  Status SavePart(VcpuStatePart p, VcpuState& into) override {
    log.push_back(std::string("save ") + ToString(p));
    if (fail_save == p) {
      fail_save.reset();
      return Error::Errno("FAKE_GET", 5);
    }
    switch (p) {
      case VcpuStatePart::kCpuid: into.cpuid = now.cpuid.value_or(Cpuid()); break;
      case VcpuStatePart::kRegisters: into.registers = now.registers.value_or(Registers()); break;
      case VcpuStatePart::kMpState: into.mp_state = now.mp_state.value_or(MpState::kRunnable); break;
      case VcpuStatePart::kTsc: into.tsc = now.tsc.value_or(0); break;
      default: return Error::Make(ErrorCode::kInvalidArgument, "FAKE", "not supported");
    }
    return Ok();
  }
  Status LoadPart(VcpuStatePart p, const VcpuState& from) override {
    log.push_back(std::string("load ") + ToString(p));
    if (fail_load == p) {
      if (!sticky) fail_load.reset();
      if (p == VcpuStatePart::kMpState) now.mp_state = MpState::kInitReceived;  // half done
      return Error::Errno("FAKE_SET", 22);
    }
    switch (p) {
      case VcpuStatePart::kCpuid: now.cpuid = from.cpuid; break;
      case VcpuStatePart::kRegisters: now.registers = from.registers; break;
      case VcpuStatePart::kMpState: now.mp_state = from.mp_state; break;
      case VcpuStatePart::kTsc: now.tsc = from.tsc; break;
      default: break;
    }
    return Ok();
  }
};

VcpuState Wanted() {
  VcpuState s;
  s.backend = "kvm";
  s.tsc = 77;
  s.mp_state = MpState::kHalted;
  Registers r;
  r.rip = 0x1234;
  s.registers = r;
  return s;
}

TEST(PartwiseVcpuStateTest, SavesAndRestoresInTheOneOrder) {
  FakeParts f;
  ASSERT_TRUE(f.RestoreState(Wanted()));
  // A save of the same parts first (for the rollback), then the loads in restore order.
  EXPECT_THAT(f.log, ElementsAre("save registers", "save mp_state", "save tsc", "load registers",
                                 "load mp_state", "load tsc"));
  auto saved = f.SaveState();
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->backend, "kvm");
  EXPECT_EQ(saved->registers->rip, 0x1234u);
  EXPECT_EQ(saved->parts().size(), 4u);
  const VcpuStatePart some[] = {VcpuStatePart::kTsc, VcpuStatePart::kCpuid};
  auto part = f.SaveState(some);
  ASSERT_TRUE(part.has_value());
  EXPECT_THAT(part->parts(), ElementsAre(VcpuStatePart::kCpuid, VcpuStatePart::kTsc));
  const VcpuStatePart missing[] = {VcpuStatePart::kXsave};
  EXPECT_EQ(f.SaveState(missing).error().code, ErrorCode::kUnavailable);
}

TEST(PartwiseVcpuStateTest, SaveStateIntoResetsThePartsNotAskedForAndEmptiesOnFailure) {
  FakeParts f;
  f.now = Wanted();
  VcpuState into;
  into.backend = "stale";
  into.lapic = std::vector<uint8_t>(1024);  // from an earlier save: not asked for now
  into.mp_state = MpState::kUninitialized;
  const VcpuStatePart some[] = {VcpuStatePart::kTsc, VcpuStatePart::kRegisters};
  ASSERT_TRUE(f.SaveStateInto(into, some));
  EXPECT_EQ(into.backend, "kvm");
  EXPECT_THAT(into.parts(), ElementsAre(VcpuStatePart::kRegisters, VcpuStatePart::kTsc));
  EXPECT_EQ(into.tsc, 77u);
  EXPECT_EQ(into.registers->rip, 0x1234u);

  // Refused before anything is read or changed.
  const VcpuState before = into;
  f.log.clear();
  const VcpuStatePart missing[] = {VcpuStatePart::kTsc, VcpuStatePart::kXsave};
  auto refused = f.SaveStateInto(into, missing);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(refused.error().Message(), HasSubstr("cannot save part xsave"));
  EXPECT_EQ(into, before);
  EXPECT_TRUE(f.log.empty());

  // A read that fails half way leaves nothing half saved.
  f.fail_save = VcpuStatePart::kMpState;
  auto failed = f.SaveStateInto(into);
  EXPECT_EQ(failed.error().native_code, 5);
  EXPECT_THAT(failed.error().Message(), HasSubstr("saving mp_state"));
  EXPECT_TRUE(into.parts().empty());
  EXPECT_TRUE(into.backend.empty());
  ASSERT_TRUE(f.SaveStateInto(into));
  EXPECT_EQ(into.parts().size(), 4u);
}

TEST(PartwiseVcpuStateTest, AValueThatNamesNoPartIsRefusedNotIgnored) {
  FakeParts f;
  f.now = Wanted();
  for (uint16_t value : {0, 12, 31, 32, 200, 0xFFFF}) {
    SCOPED_TRACE(value);
    const VcpuStatePart odd[] = {VcpuStatePart::kTsc, static_cast<VcpuStatePart>(value)};
    VcpuState into = Wanted();
    const VcpuState before = into;
    f.log.clear();
    auto refused = f.SaveStateInto(into, odd);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
    EXPECT_THAT(refused.error().Message(), HasSubstr("cannot save part unknown"));
    EXPECT_EQ(into, before);
    EXPECT_TRUE(f.log.empty());
  }
}

// A VcpuStateControl that implements only SaveState: the interface's SaveStateInto.
class SaveOnly final : public VcpuStateControl {
 public:
  bool fail = false;
  std::span<const VcpuStatePart> supported_parts() const override { return parts_; }
  Result<VcpuState> SaveState(std::span<const VcpuStatePart>) override {
    if (fail) return Error::Errno("FAKE_GET", 5);
    VcpuState s;
    s.backend = "whp";
    s.tsc = 9;
    return s;
  }
  Status RestoreState(const VcpuState&, RestoreMode) override { return Ok(); }

 private:
  const VcpuStatePart parts_[1] = {VcpuStatePart::kTsc};
};

TEST(VcpuStateControlTest, TheDefaultSaveStateIntoKeepsTheSameContract) {
  SaveOnly c;
  VcpuState into;
  into.lapic = std::vector<uint8_t>(4);
  ASSERT_TRUE(c.SaveStateInto(into));
  EXPECT_THAT(into.parts(), ElementsAre(VcpuStatePart::kTsc));
  EXPECT_EQ(into.backend, "whp");
  const VcpuState before = into;
  const VcpuStatePart missing[] = {VcpuStatePart::kLapic};
  EXPECT_EQ(c.SaveStateInto(into, missing).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(into, before);
  c.fail = true;
  EXPECT_EQ(c.SaveStateInto(into).error().native_code, 5);
  EXPECT_TRUE(into.parts().empty());
}

TEST(PartwiseVcpuStateTest, AnotherBackendOrAPartItCannotLoadChangesNothing) {
  FakeParts f;
  VcpuState foreign = Wanted();
  foreign.backend = "mshv";
  auto s = f.RestoreState(foreign);
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(s.error().Message(), HasSubstr("saved by backend mshv"));
  VcpuState extra = Wanted();
  extra.lapic = std::vector<uint8_t>(1024);
  s = f.RestoreState(extra);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(s.error().Message(), HasSubstr("cannot restore part lapic; nothing was changed"));
  EXPECT_TRUE(f.log.empty());
}

TEST(PartwiseVcpuStateTest, AFailedPartIsNamedAndTheVcpuPutBack) {
  FakeParts f;
  Registers old;
  old.rip = 0x999;
  f.now.registers = old;
  f.now.mp_state = MpState::kRunnable;
  f.now.tsc = 5;
  f.fail_load = VcpuStatePart::kMpState;
  auto s = f.RestoreState(Wanted());
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().native_code, 22);
  EXPECT_THAT(s.error().Message(), HasSubstr("restoring mp_state failed"));
  EXPECT_THAT(s.error().Message(), HasSubstr("the parts before it were put back"));
  EXPECT_EQ(f.now.registers->rip, 0x999u);
  EXPECT_EQ(f.now.mp_state, MpState::kRunnable) << "the half-done part is put back too";
  EXPECT_EQ(f.now.tsc, 5u) << "nothing after the failed part was loaded";

  f.log.clear();
  f.fail_load = VcpuStatePart::kMpState;
  f.sticky = true;  // putting it back fails as well
  s = f.RestoreState(Wanted());
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().Message(), HasSubstr("putting back mp_state failed too"));
}

TEST(PartwiseVcpuStateTest, WithoutRollbackOnlyTheLoadsRunAndAFailureNamesThePart) {
  FakeParts f;
  ASSERT_TRUE(f.RestoreState(Wanted(), RestoreMode::kStopOnFailure));
  EXPECT_THAT(f.log, ElementsAre("load registers", "load mp_state", "load tsc"));

  f.log.clear();
  f.now.tsc = 5;
  VcpuState other = Wanted();
  other.registers->rip = 0x5678;
  f.fail_load = VcpuStatePart::kMpState;
  auto s = f.RestoreState(other, RestoreMode::kStopOnFailure);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().native_code, 22);
  EXPECT_THAT(s.error().Message(), HasSubstr("restoring mp_state failed"));
  EXPECT_THAT(s.error().Message(), HasSubstr("the parts before it stay restored"));
  EXPECT_THAT(f.log, ElementsAre("load registers", "load mp_state"));
  EXPECT_EQ(f.now.registers->rip, 0x5678u) << "the part before the failure stays restored";
  EXPECT_EQ(f.now.tsc, 5u) << "nothing after the failed part was loaded";

  f.fail_load = VcpuStatePart::kRegisters;
  s = f.RestoreState(other, RestoreMode::kStopOnFailure);
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().Message(), HasSubstr("nothing was restored"));
}

}  // namespace
}  // namespace virt
