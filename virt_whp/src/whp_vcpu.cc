// WhpVcpu: the WHvRunVirtualProcessor loop, exit decoding, access completion and cancel.
#include "whp_vcpu.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "whp_init_sipi.h"

namespace virt::whp {
namespace {

WHV_REGISTER_NAME GprName(uint8_t reg) {
  return static_cast<WHV_REGISTER_NAME>(WHvX64RegisterRax + reg);  // x86 encoding order
}

WHV_REGISTER_VALUE Value64(uint64_t v) {
  WHV_REGISTER_VALUE value{};
  value.Reg64 = v;
  return value;
}

X86Mode ModeOf(const WHV_VP_EXIT_CONTEXT& vp) {
  if (vp.ExecutionState.EferLma && vp.Cs.Long) return X86Mode::kLong64;
  if (vp.ExecutionState.Cr0Pe && vp.Cs.Default) return X86Mode::kProtected32;
  return X86Mode::kReal16;
}

UnsupportedInstructionExit Unsupported(uint64_t address, const UINT8* bytes, uint8_t count,
                                       const char* reason) {
  UnsupportedInstructionExit u;
  u.address = address;
  u.length = count > u.bytes.size() ? static_cast<uint8_t>(u.bytes.size()) : count;
  std::memcpy(u.bytes.data(), bytes, u.length);
  u.reason = reason;
  return u;
}

}  // namespace

Result<std::unique_ptr<WhpVcpu>> WhpVcpu::Create(std::shared_ptr<WhpPartitionHandle> partition,
                                                 uint32_t index, uint32_t vcpu_count,
                                                 bool irqchip,
                                                 std::shared_ptr<WhpCpuidPolicy> cpuid) {
  if (Status s = partition->ClaimVcpu(index); !s) return s.error();
  WhpApi& api = partition->api();
  if (Status s = api.CreateVirtualProcessor(partition->get(), index, 0); !s) {
    partition->ReleaseVcpu(index);
    return s.error();
  }
  if (irqchip && index != 0) {
    // An application processor waits for INIT/SIPI (Partition::CreateVcpu).
    const WHV_REGISTER_NAME name = WHvRegisterInternalActivityState;
    WHV_REGISTER_VALUE value{};
    value.InternalActivity.StartupSuspend = 1;
    if (Status s = api.SetVirtualProcessorRegisters(partition->get(), index, &name, 1, &value);
        !s) {
      if (Status d = api.DeleteVirtualProcessor(partition->get(), index); !d) {
        std::fprintf(stderr, "virt/whp: %s\n", d.error().Message().c_str());
      }
      partition->ReleaseVcpu(index);
      return s.error();
    }
  }
  return std::unique_ptr<WhpVcpu>(
      new WhpVcpu(std::move(partition), index, vcpu_count, irqchip, std::move(cpuid)));
}

WhpVcpu::WhpVcpu(std::shared_ptr<WhpPartitionHandle> partition, uint32_t index,
                 uint32_t vcpu_count, bool irqchip, std::shared_ptr<WhpCpuidPolicy> cpuid)
    : partition_(std::move(partition)),
      index_(index),
      vcpu_count_(vcpu_count),
      policy_(cpuid),
      cpuid_(std::move(cpuid), index) {
  if (irqchip) mp_state_.emplace(*partition_, index_);
  state_.emplace(*partition_, index_, *this, policy_->probed(), irqchip);
}

VcpuCpuid* WhpVcpu::cpuid() { return policy_->probed() ? &cpuid_ : nullptr; }

VcpuMpState* WhpVcpu::mp_state() { return mp_state_ ? &*mp_state_ : nullptr; }

WhpVcpu::~WhpVcpu() {
  if (Status s = partition_->api().DeleteVirtualProcessor(partition_->get(), index_); !s) {
    std::fprintf(stderr, "virt/whp: %s\n", s.error().Message().c_str());
  }
  partition_->ReleaseVcpu(index_);
}

void WhpVcpu::Cancel() {
  if (Status s = partition_->api().CancelRunVirtualProcessor(partition_->get(), index_, 0); !s) {
    std::fprintf(stderr, "virt/whp: %s\n", s.error().Message().c_str());
  }
}

Result<VcpuExit> WhpVcpu::Run() {
  if (pending_ != Pending::kNone) {
    if (Status s = CompletePendingWithAllOnes(); !s) return s.error();
  }
  cpuid_.MarkRan();
  for (;;) {
    WHV_RUN_VP_EXIT_CONTEXT exit{};
    if (Status s = partition_->api().RunVirtualProcessor(partition_->get(), index_, &exit); !s) {
      return s.error();
    }
    // Read as the 32-bit integer WHP wrote: a reason newer than our enum (or garbage) is
    // outside the enum's range, and loading it as the enum would be undefined.
    static_assert(sizeof exit.ExitReason == sizeof(uint32_t));
    uint32_t reason = 0;
    std::memcpy(&reason, &exit.ExitReason, sizeof reason);
    switch (reason) {
      case WHvRunVpExitReasonX64IoPortAccess:
        return HandleIo(exit);
      case WHvRunVpExitReasonMemoryAccess:
        return HandleMemory(exit);
      case WHvRunVpExitReasonX64Cpuid:
        if (Status s = HandleCpuid(exit); !s) return s.error();
        continue;
      case WHvRunVpExitReasonX64ApicInitSipiTrap: {
        auto handled = HandleInitSipi(exit);
        if (!handled) return handled.error();
        if (*handled) return **handled;
        continue;
      }
      case WHvRunVpExitReasonNone:
        continue;
      case WHvRunVpExitReasonX64Halt:
        return VcpuExit{HaltExit{}};
      case WHvRunVpExitReasonCanceled:
        return VcpuExit{CancelledExit{}};
      case WHvRunVpExitReasonUnrecoverableException:
        return VcpuExit{ShutdownExit{}};
      case WHvRunVpExitReasonInvalidVpRegisterValue:
        return VcpuExit{InternalErrorExit{.suberror = reason}};
      case WHvRunVpExitReasonUnsupportedFeature:
        return VcpuExit{InternalErrorExit{
            .suberror = reason,
            .data = {exit.UnsupportedFeature.FeatureCode,
                     exit.UnsupportedFeature.FeatureParameter, 0, 0},
            .ndata = 2}};
      default:
        return VcpuExit{UnknownExit{.reason = reason}};
    }
  }
}

Result<VcpuExit> WhpVcpu::HandleIo(const WHV_RUN_VP_EXIT_CONTEXT& exit) {
  const auto& io = exit.IoPortAccess;
  if (io.AccessInfo.StringOp || io.AccessInfo.RepPrefix) {
    // The data lives in guest memory at RSI/RDI; this backend does not walk guest page tables.
    return VcpuExit{Unsupported(io.PortNumber, io.InstructionBytes, io.InstructionByteCount,
                                "string port I/O")};
  }
  const uint8_t size = static_cast<uint8_t>(io.AccessInfo.AccessSize);
  if (size != 1 && size != 2 && size != 4) {
    return Error::Make(ErrorCode::kNative, "WhpVcpu::Run",
                       "port access of size " + std::to_string(size));
  }
  IoExit io_exit;
  io_exit.port = io.PortNumber;
  io_exit.size = size;
  io_exit.is_write = io.AccessInfo.IsWrite != 0;
  io_exit.count = 1;
  const uint64_t rax = io.Rax;
  std::memcpy(io_data_.data(), &rax, io_data_.size());  // little-endian: AL, AH, ...
  io_exit.data = std::span<const uint8_t>(io_data_.data(), size);
  const uint64_t next_rip = exit.VpContext.Rip + exit.VpContext.InstructionLength;
  if (io_exit.is_write) {
    const WHV_REGISTER_NAME name = WHvX64RegisterRip;
    const WHV_REGISTER_VALUE value = Value64(next_rip);
    if (Status s = SetRegs({&name, 1}, {&value, 1}); !s) return s.error();
  } else {
    pending_ = Pending::kIoIn;
    pending_io_size_ = size;
    pending_io_rax_ = rax;
    pending_rip_ = next_rip;
  }
  return VcpuExit{io_exit};
}

Result<VcpuExit> WhpVcpu::HandleMemory(const WHV_RUN_VP_EXIT_CONTEXT& exit) {
  const auto& mem = exit.MemoryAccess;
  const uint64_t gpa = mem.Gpa;
  const uint8_t count = mem.InstructionByteCount > 16 ? 16 : mem.InstructionByteCount;
  if (mem.AccessInfo.AccessType == WHvMemoryAccessExecute) {
    return VcpuExit{Unsupported(gpa, mem.InstructionBytes, count,
                                "instruction fetch from unmapped memory")};
  }
  const bool is_write = mem.AccessInfo.AccessType == WHvMemoryAccessWrite;
  auto insn = DecodeMmioInstruction(std::span<const uint8_t>(mem.InstructionBytes, count),
                                    ModeOf(exit.VpContext));
  if (!insn) {
    const bool truncated = insn.error().detail.starts_with("truncated");
    return VcpuExit{Unsupported(gpa, mem.InstructionBytes, count,
                                truncated ? "truncated instruction bytes"
                                          : "not a supported MOV form")};
  }
  if (insn->is_write != is_write) {
    return VcpuExit{Unsupported(gpa, mem.InstructionBytes, count,
                                "instruction direction differs from the access")};
  }
  MmioExit mmio;
  mmio.address = gpa;
  mmio.size = insn->width;
  mmio.is_write = is_write;
  const uint64_t next_rip = exit.VpContext.Rip + insn->length;
  if (is_write) {
    uint64_t source = 0;
    if (insn->operand == MmioOperand::kRegister) {
      const WHV_REGISTER_NAME name = GprName(insn->reg);
      WHV_REGISTER_VALUE value{};
      if (Status s = GetRegs({&name, 1}, {&value, 1}); !s) return s.error();
      source = value.Reg64;
    }
    mmio.value = MmioWriteValue(*insn, source);
    const WHV_REGISTER_NAME rip = WHvX64RegisterRip;
    const WHV_REGISTER_VALUE rip_value = Value64(next_rip);
    if (Status s = SetRegs({&rip, 1}, {&rip_value, 1}); !s) return s.error();
  } else {
    pending_ = Pending::kMmioRead;
    pending_mmio_ = *insn;
    pending_rip_ = next_rip;
  }
  return VcpuExit{mmio};
}

Status WhpVcpu::HandleCpuid(const WHV_RUN_VP_EXIT_CONTEXT& exit) {
  const auto& c = exit.CpuidAccess;
  const auto function = static_cast<uint32_t>(c.Rax);
  const auto index = static_cast<uint32_t>(c.Rcx);
  const CpuidEntry defaults{.function = function, .index = index, .flags = 0,
                            .eax = static_cast<uint32_t>(c.DefaultResultRax),
                            .ebx = static_cast<uint32_t>(c.DefaultResultRbx),
                            .ecx = static_cast<uint32_t>(c.DefaultResultRcx),
                            .edx = static_cast<uint32_t>(c.DefaultResultRdx)};
  const CpuidEntry answer = cpuid_.Answer(function, index, defaults);
  const WHV_REGISTER_NAME names[] = {WHvX64RegisterRax, WHvX64RegisterRbx, WHvX64RegisterRcx,
                                     WHvX64RegisterRdx, WHvX64RegisterRip};
  const WHV_REGISTER_VALUE values[] = {
      Value64(answer.eax), Value64(answer.ebx), Value64(answer.ecx), Value64(answer.edx),
      Value64(exit.VpContext.Rip + exit.VpContext.InstructionLength)};
  return SetRegs(names, values);
}

Result<std::optional<VcpuExit>> WhpVcpu::HandleInitSipi(const WHV_RUN_VP_EXIT_CONTEXT& exit) {
  const uint64_t icr = exit.ApicInitSipi.ApicIcr;
  auto controls = InitSipiControls(icr, index_, vcpu_count_);
  if (!controls) {
    return std::optional<VcpuExit>(VcpuExit{InternalErrorExit{
        .suberror = static_cast<uint32_t>(WHvRunVpExitReasonX64ApicInitSipiTrap),
        .data = {icr, 0, 0, 0},
        .ndata = 1}});
  }
  // The trap comes after the ICR write: RIP is already past it.
  for (const WHV_INTERRUPT_CONTROL& control : *controls) {
    if (Status s = partition_->api().RequestInterrupt(partition_->get(), control); !s) {
      return s.error();
    }
  }
  return std::optional<VcpuExit>();
}

Status WhpVcpu::SetRegisterAndRip(WHV_REGISTER_NAME name, uint64_t value, uint64_t rip) {
  const WHV_REGISTER_NAME names[] = {name, WHvX64RegisterRip};
  const WHV_REGISTER_VALUE values[] = {Value64(value), Value64(rip)};
  return SetRegs(names, values);
}

Status WhpVcpu::CompleteIoIn(std::span<const uint8_t> data) {
  if (pending_ != Pending::kIoIn) {
    return Error::Make(ErrorCode::kFailedPrecondition, "WhpVcpu::CompleteIoIn",
                       "the last exit was not a port IN");
  }
  if (data.size() != pending_io_size_) {
    return Error::Make(ErrorCode::kInvalidArgument, "WhpVcpu::CompleteIoIn",
                       "got " + std::to_string(data.size()) + " bytes, the IN wants " +
                           std::to_string(pending_io_size_));
  }
  if (Status s = SetRegisterAndRip(WHvX64RegisterRax, ApplyIoIn(pending_io_rax_, data),
                                   pending_rip_);
      !s) {
    return s;  // still pending: the caller may retry
  }
  pending_ = Pending::kNone;
  return Ok();
}

Status WhpVcpu::CompleteMmioRead(uint64_t value) {
  if (pending_ != Pending::kMmioRead) {
    return Error::Make(ErrorCode::kFailedPrecondition, "WhpVcpu::CompleteMmioRead",
                       "the last exit was not an MMIO read");
  }
  const WHV_REGISTER_NAME name = GprName(pending_mmio_.reg);
  uint64_t old = 0;
  if (MmioReadNeedsOldValue(pending_mmio_)) {
    WHV_REGISTER_VALUE current{};
    if (Status s = GetRegs({&name, 1}, {&current, 1}); !s) return s;
    old = current.Reg64;
  }
  if (Status s = SetRegisterAndRip(name, ApplyMmioRead(pending_mmio_, old, value), pending_rip_);
      !s) {
    return s;
  }
  pending_ = Pending::kNone;
  return Ok();
}

Status WhpVcpu::CompletePendingWithAllOnes() {
  if (pending_ == Pending::kIoIn) {
    const uint8_t ones[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    return CompleteIoIn({ones, pending_io_size_});
  }
  return CompleteMmioRead(~uint64_t{0});
}

Status WhpVcpu::GetRegs(std::span<const WHV_REGISTER_NAME> names,
                        std::span<WHV_REGISTER_VALUE> values) {
  return partition_->api().GetVirtualProcessorRegisters(
      partition_->get(), index_, names.data(), static_cast<uint32_t>(names.size()),
      values.data());
}

Status WhpVcpu::SetRegs(std::span<const WHV_REGISTER_NAME> names,
                        std::span<const WHV_REGISTER_VALUE> values) {
  return partition_->api().SetVirtualProcessorRegisters(
      partition_->get(), index_, names.data(), static_cast<uint32_t>(names.size()),
      values.data());
}

}  // namespace virt::whp
