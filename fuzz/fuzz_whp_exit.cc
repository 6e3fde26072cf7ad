// libFuzzer target: WhpVcpu::Run turning arbitrary WHV_RUN_VP_EXIT_CONTEXTs into VcpuExits.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "virt/whp/whp_hypervisor.h"
#include "virt/x86_mmio_decoder.h"
#include "fuzz_check.h"
#include "fuzz_whp_api.h"

namespace {

using namespace virt;
using namespace virt::whp;

constexpr size_t kExitBytes = sizeof(WHV_RUN_VP_EXIT_CONTEXT);

// The exit's fields read from its bytes, not through the (enum, bit-field) struct members.
struct RawExit {
  uint32_t reason;
  uint32_t reserved;   // bit 0: the harness answers a read itself (else the next Run does)
  uint16_t execution_state;
  uint8_t instruction_length;
  uint16_t cs_attributes;
  uint64_t rip;
  uint64_t rflags;     // the value the harness answers a read with
  const uint8_t* body;  // the union at offset 48
};

uint64_t Le(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

RawExit Parse(const uint8_t* e) {
  return {static_cast<uint32_t>(Le(e, 4)), static_cast<uint32_t>(Le(e + 4, 4)),
          static_cast<uint16_t>(Le(e + 8, 2)), static_cast<uint8_t>(e[10] & 0x0F),
          static_cast<uint16_t>(Le(e + 16 + 14, 2)), Le(e + 32, 8), Le(e + 40, 8), e + 48};
}

// The mode WhpVcpu must pick from the exit's execution state and CS (WHV bit positions:
// Cr0Pe 2, EferLma 4; CS attributes Long 13, Default 14).
X86Mode ModeOf(const RawExit& r) {
  const bool pe = (r.execution_state >> 2) & 1, lma = (r.execution_state >> 4) & 1;
  const bool l = (r.cs_attributes >> 13) & 1, d = (r.cs_attributes >> 14) & 1;
  if (lma && l) return X86Mode::kLong64;
  if (pe && d) return X86Mode::kProtected32;
  return X86Mode::kReal16;
}

struct Harness {
  std::shared_ptr<fuzz::FuzzWhpApi> api = std::make_shared<fuzz::FuzzWhpApi>();
  std::unique_ptr<WhpHypervisor> hypervisor;
  std::unique_ptr<Partition> partition;

  Harness() {
    auto h = WhpHypervisor::Create(api);
    FUZZ_CHECK(h.has_value());
    hypervisor = std::move(*h);
    auto p = hypervisor->CreatePartition({.vcpu_count = 2, .irqchip = true});
    FUZZ_CHECK(p.has_value());
    partition = std::move(*p);
  }
};

// Checks one Run result against the exit WHP reported last.
void CheckExit(const Result<VcpuExit>& got, fuzz::FuzzWhpApi& api, Vcpu& vcpu,
               const uint8_t* raw_bytes) {
  const RawExit r = Parse(raw_bytes);
  const uint8_t* b = r.body;
  if (!got) {
    // Only a port access of a size other than 1/2/4 is an error; never a crash.
    const uint32_t info = static_cast<uint32_t>(Le(b + 20, 4));
    const uint32_t size = (info >> 1) & 7;
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonX64IoPortAccess && size != 1 && size != 2 &&
               size != 4 && ((info >> 4) & 3) == 0);
    FUZZ_CHECK(std::string(got.error().operation) == "WhpVcpu::Run");
    FUZZ_CHECK(api.rip_writes() == 0);
    return;
  }
  const uint64_t next_rip = r.rip + r.instruction_length;
  if (auto* io = std::get_if<IoExit>(&*got)) {
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonX64IoPortAccess);
    const uint32_t info = static_cast<uint32_t>(Le(b + 20, 4));
    FUZZ_CHECK(io->port == Le(b + 24, 2));
    FUZZ_CHECK(io->size == ((info >> 1) & 7) && (io->size == 1 || io->size == 2 || io->size == 4));
    FUZZ_CHECK(io->is_write == ((info & 1) != 0) && io->count == 1);
    FUZZ_CHECK(io->data.size() == io->size && std::memcmp(io->data.data(), b + 32, io->size) == 0);
    if (io->is_write) {
      FUZZ_CHECK(api.rip_writes() == 1 && api.reg(WHvX64RegisterRip) == next_rip);
    } else {
      FUZZ_CHECK(api.rip_writes() == 0);
      if (r.reserved & 1) {
        uint8_t in[4];
        std::memcpy(in, &r.rflags, sizeof in);
        FUZZ_CHECK(vcpu.CompleteIoIn({in, io->size}).has_value());
        FUZZ_CHECK(api.reg(WHvX64RegisterRax) == ApplyIoIn(Le(b + 32, 8), {in, io->size}));
        FUZZ_CHECK(api.reg(WHvX64RegisterRip) == next_rip);
        // Answered once: a second answer is refused.
        FUZZ_CHECK(!vcpu.CompleteIoIn({in, io->size}).has_value());
      }
    }
    return;
  }
  if (auto* mmio = std::get_if<MmioExit>(&*got)) {
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonMemoryAccess);
    const uint32_t access = static_cast<uint32_t>(Le(b + 20, 4)) & 3;
    FUZZ_CHECK(access != WHvMemoryAccessExecute);
    FUZZ_CHECK(mmio->address == Le(b + 24, 8));
    FUZZ_CHECK(mmio->is_write == (access == WHvMemoryAccessWrite));
    FUZZ_CHECK(mmio->size == 1 || mmio->size == 2 || mmio->size == 4 || mmio->size == 8);
    // The instruction came from within the bytes WHP gave (at most 16), in the exit's mode.
    const size_t count = std::min<size_t>(b[0], 16);
    auto insn = DecodeMmioInstruction({b + 4, count}, ModeOf(r));
    FUZZ_CHECK(insn.has_value() && insn->width == mmio->size && insn->is_write == mmio->is_write);
    FUZZ_CHECK(insn->length <= count);
    if (mmio->is_write) {
      FUZZ_CHECK(mmio->size == 8 || (mmio->value >> (8 * mmio->size)) == 0);
      FUZZ_CHECK(api.rip_writes() == 1 && api.reg(WHvX64RegisterRip) == r.rip + insn->length);
    } else {
      FUZZ_CHECK(api.rip_writes() == 0);
      if (r.reserved & 1) {
        FUZZ_CHECK(vcpu.CompleteMmioRead(r.rflags).has_value());
        FUZZ_CHECK(api.reg(WHvX64RegisterRip) == r.rip + insn->length);
        FUZZ_CHECK(!vcpu.CompleteMmioRead(r.rflags).has_value());
      }
    }
    return;
  }
  // Every other exit leaves RIP where it is.
  FUZZ_CHECK(api.rip_writes() == 0);
  if (auto* u = std::get_if<UnsupportedInstructionExit>(&*got)) {
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonMemoryAccess ||
               r.reason == WHvRunVpExitReasonX64IoPortAccess);
    FUZZ_CHECK(u->length <= 16 && u->length <= b[0]);
    FUZZ_CHECK(std::memcmp(u->bytes.data(), b + 4, u->length) == 0);
    FUZZ_CHECK(u->reason != nullptr && u->reason[0] != '\0');
  } else if (std::holds_alternative<HaltExit>(*got)) {
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonX64Halt);
  } else if (std::holds_alternative<ShutdownExit>(*got)) {
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonUnrecoverableException);
  } else if (std::holds_alternative<CancelledExit>(*got)) {
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonCanceled);
  } else if (auto* e = std::get_if<InternalErrorExit>(&*got)) {
    FUZZ_CHECK(e->suberror == r.reason && e->ndata <= e->data.size());
    FUZZ_CHECK(r.reason == WHvRunVpExitReasonInvalidVpRegisterValue ||
               r.reason == WHvRunVpExitReasonUnsupportedFeature ||
               r.reason == WHvRunVpExitReasonX64ApicInitSipiTrap);
  } else if (auto* k = std::get_if<UnknownExit>(&*got)) {
    FUZZ_CHECK(k->reason == r.reason);
    for (uint32_t handled :
         {WHvRunVpExitReasonNone, WHvRunVpExitReasonMemoryAccess,
          WHvRunVpExitReasonX64IoPortAccess, WHvRunVpExitReasonUnrecoverableException,
          WHvRunVpExitReasonInvalidVpRegisterValue, WHvRunVpExitReasonUnsupportedFeature,
          WHvRunVpExitReasonX64Halt, WHvRunVpExitReasonX64Cpuid,
          WHvRunVpExitReasonX64ApicInitSipiTrap, WHvRunVpExitReasonCanceled}) {
      FUZZ_CHECK(k->reason != handled);
    }
  }
}

}  // namespace

// Input: consecutive 224-byte WHV_RUN_VP_EXIT_CONTEXTs (the last one zero-padded), handed to
// one fresh vCPU's Run calls in order, until the queue is drained.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness harness;
  fuzz::FuzzWhpApi& api = *harness.api;
  const size_t n = (size + kExitBytes - 1) / kExitBytes;
  if (n > 64) return 0;
  api.Reset();
  std::vector<uint8_t> bytes(n * kExitBytes, 0);
  if (size != 0) std::memcpy(bytes.data(), data, size);
  for (size_t i = 0; i < n; ++i) {
    WHV_RUN_VP_EXIT_CONTEXT exit;
    std::memcpy(&exit, bytes.data() + i * kExitBytes, kExitBytes);
    api.Queue(exit);
  }
  auto v = harness.partition->CreateVcpu(0);
  FUZZ_CHECK(v.has_value());
  Vcpu& vcpu = **v;
  for (size_t runs = 0; runs <= n; ++runs) {
    auto got = vcpu.Run();
    WHV_RUN_VP_EXIT_CONTEXT last = api.last_exit();
    uint8_t last_bytes[kExitBytes];
    std::memcpy(last_bytes, &last, kExitBytes);
    CheckExit(got, api, vcpu, last_bytes);
    if (api.drained()) break;
  }
  return 0;
}
