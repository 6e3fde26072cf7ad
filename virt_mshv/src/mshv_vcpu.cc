// MshvVcpu: MSHV_RUN_VP loop, intercept handling and completion, cross-thread cancel.
#include "mshv_vcpu.h"

#include <csignal>
#include <cstring>
#include <string>
#include <utility>

#include "mshv_hvcall.h"

namespace virt::mshv {
namespace {

void IgnoreKick(int) {}

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = IgnoreKick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: MSHV_RUN_VP must return EINTR
    sigaction(MshvVcpu::KickSignal(), &sa, nullptr);
  });
}

uint32_t GprName(uint8_t reg) { return HV_X64_REGISTER_RAX + reg; }

UnsupportedInstructionExit Unsupported(uint64_t address, const std::array<uint8_t, 16>& bytes,
                                       uint8_t count, const char* reason) {
  UnsupportedInstructionExit u;
  u.address = address;
  u.bytes = bytes;
  u.length = count;
  u.reason = reason;
  return u;
}

}  // namespace

int MshvVcpu::KickSignal() { return SIGRTMIN + 3; }

Result<std::unique_ptr<MshvVcpu>> MshvVcpu::Create(
    std::shared_ptr<MshvIoctl> ioctl, int partition_fd, uint32_t index,
    std::shared_ptr<MshvCpuidIntercepts> intercepts, bool lapic) {
  mshv_create_vp args{};
  args.vp_index = index;
  auto fd = ioctl->CreateVp(partition_fd, args);
  if (!fd) return fd.error();
  MshvFd vp(ioctl, *fd);
  InstallKickHandler();
  return std::unique_ptr<MshvVcpu>(
      new MshvVcpu(std::move(ioctl), std::move(vp), index, std::move(intercepts), lapic));
}

MshvVcpu::MshvVcpu(std::shared_ptr<MshvIoctl> ioctl, MshvFd fd, uint32_t index,
                   std::shared_ptr<MshvCpuidIntercepts> intercepts, bool lapic)
    : ioctl_(std::move(ioctl)),
      fd_(std::move(fd)),
      index_(index),
      cpuid_(ioctl_, fd_.get(), index, std::move(intercepts)),
      mp_state_(ioctl_, fd_.get(), index),
      state_(ioctl_, fd_.get(), index, *this, lapic) {}

void MshvVcpu::Cancel() {
  uint32_t seen = run_state_.load(std::memory_order_relaxed);
  while (!run_state_.compare_exchange_weak(seen, (seen | kCancel) + ((seen & kInRun) ? kKicker : 0),
                                       std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
  if ((seen & kInRun) == 0) return;  // the next check in Run sees kCancel
  const pthread_t runner = runner_.load(std::memory_order_relaxed);
  if (!pthread_equal(runner, pthread_self())) {
    // Kick until the runner has consumed this cancel (or one after it) or left MSHV_RUN_VP.
    std::unique_lock lock(kick_mu_);
    for (;;) {
      const uint32_t now = run_state_.load(std::memory_order_acquire);
      if ((now & kInRun) == 0 || (now & kCancel) == 0) break;
      pthread_kill(runner, KickSignal());
      left_run_.wait_for(lock, std::chrono::milliseconds(1));
    }
  }
  run_state_.fetch_sub(kKicker, std::memory_order_release);
}

uint32_t MshvVcpu::LeaveRun(uint32_t also_clear) {
  const uint32_t was = run_state_.fetch_and(~(kInRun | also_clear), std::memory_order_acq_rel);
  if (was >= kKicker) {
    // A Cancel may be about to signal this thread: wait until it has, and wake it.
    std::lock_guard lock(kick_mu_);
    left_run_.notify_all();
  }
  return was;
}

Result<VcpuExit> MshvVcpu::Run() {
  if (pending_ != Pending::kNone) {
    if (Status s = CompletePendingWithAllOnes(); !s) return s.error();
  }
  runner_.store(pthread_self(), std::memory_order_relaxed);
  for (;;) {
    if (run_state_.fetch_or(kInRun, std::memory_order_acq_rel) & kCancel) {
      LeaveRun(kCancel);
      return VcpuExit{CancelledExit{}};
    }
    cpuid_.MarkEntered();
    Status ran = ioctl_->RunVp(fd_.get(), &run_);
    LeaveRun(0);
    if (!ran) {
      // EINTR: our kick (seen at the top of the loop) or a foreign signal (run again).
      if (ran.error().native_code == EINTR || ran.error().native_code == EAGAIN) continue;
      return ran.error();
    }
    auto message = DecodeMessage(run_);
    if (!message) return message.error();
    if (std::holds_alternative<RunAgain>(*message)) continue;
    if (auto* io = std::get_if<IoPortIntercept>(&*message)) return HandleIo(*io);
    if (auto* mem = std::get_if<MemoryIntercept>(&*message)) return HandleMemory(*mem);
    if (auto* c = std::get_if<CpuidIntercept>(&*message)) {
      if (Status s = cpuid_.Complete(*c); !s) return s.error();
      continue;
    }
    return std::get<VcpuExit>(std::move(*message));
  }
}

Result<VcpuExit> MshvVcpu::HandleIo(const IoPortIntercept& io) {
  if (io.string_op || io.rep) {
    // The data lives in guest memory at RSI/RDI; this backend does not walk guest page tables.
    return VcpuExit{Unsupported(io.port, io.instruction_bytes, io.instruction_byte_count,
                                "string port I/O")};
  }
  IoExit exit;
  exit.port = io.port;
  exit.size = io.size;
  exit.is_write = io.is_write;
  exit.count = 1;
  const uint64_t rax = io.rax;
  std::memcpy(io_data_.data(), &rax, io_data_.size());  // little-endian: AL, AH, ...
  exit.data = std::span<const uint8_t>(io_data_.data(), io.size);
  if (io.is_write) {
    if (Status s = AdvanceRip(io.rip + io.instruction_length); !s) return s.error();
  } else {
    pending_ = Pending::kIoIn;
    pending_io_ = io;
  }
  return VcpuExit{exit};
}

Result<VcpuExit> MshvVcpu::HandleMemory(const MemoryIntercept& mem) {
  auto insn = DecodeMmioInstruction(
      std::span<const uint8_t>(mem.instruction_bytes.data(), mem.instruction_byte_count),
      mem.mode);
  if (!insn) {
    const bool truncated = insn.error().detail.starts_with("truncated");
    return VcpuExit{Unsupported(mem.gpa, mem.instruction_bytes, mem.instruction_byte_count,
                                truncated ? "truncated instruction bytes"
                                          : "not a supported MOV form")};
  }
  if (insn->is_write != mem.is_write) {
    return VcpuExit{Unsupported(mem.gpa, mem.instruction_bytes, mem.instruction_byte_count,
                                "instruction direction differs from the access")};
  }
  MmioExit exit;
  exit.address = mem.gpa;
  exit.size = insn->width;
  exit.is_write = insn->is_write;
  if (insn->is_write) {
    uint64_t source = 0;
    if (insn->operand == MmioOperand::kRegister) {
      const uint32_t name = GprName(insn->reg);
      hv_register_value value{};
      if (Status s = GetVpRegisters(*ioctl_, fd_.get(), index_, {&name, 1}, {&value, 1}); !s) {
        return s.error();
      }
      source = value.low;
    }
    exit.value = MmioWriteValue(*insn, source);
    if (Status s = AdvanceRip(mem.rip + insn->length); !s) return s.error();
  } else {
    pending_ = Pending::kMmioRead;
    pending_mmio_ = *insn;
    pending_rip_ = mem.rip;
  }
  return VcpuExit{exit};
}

Status MshvVcpu::AdvanceRip(uint64_t rip) {
  const hv_register_assoc assoc = Assoc(HV_X64_REGISTER_RIP, rip);
  return SetVpRegisters(*ioctl_, fd_.get(), index_, {&assoc, 1});
}

Status MshvVcpu::SetRegisterAndRip(uint32_t name, uint64_t value, uint64_t rip) {
  const hv_register_assoc assocs[] = {Assoc(name, value), Assoc(HV_X64_REGISTER_RIP, rip)};
  return SetVpRegisters(*ioctl_, fd_.get(), index_, assocs);
}

Status MshvVcpu::CompleteIoIn(std::span<const uint8_t> data) {
  if (pending_ != Pending::kIoIn) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvVcpu::CompleteIoIn",
                       "the last exit was not a port IN");
  }
  if (data.size() != pending_io_.size) {
    return Error::Make(ErrorCode::kInvalidArgument, "MshvVcpu::CompleteIoIn",
                       "got " + std::to_string(data.size()) + " bytes, the IN wants " +
                           std::to_string(pending_io_.size));
  }
  if (Status s = SetRegisterAndRip(HV_X64_REGISTER_RAX, ApplyIoIn(pending_io_.rax, data),
                                   pending_io_.rip + pending_io_.instruction_length);
      !s) {
    return s;  // still pending: the caller may retry
  }
  pending_ = Pending::kNone;
  return Ok();
}

Status MshvVcpu::CompleteMmioRead(uint64_t value) {
  if (pending_ != Pending::kMmioRead) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvVcpu::CompleteMmioRead",
                       "the last exit was not an MMIO read");
  }
  const uint32_t name = GprName(pending_mmio_.reg);
  uint64_t old = 0;
  if (MmioReadNeedsOldValue(pending_mmio_)) {
    hv_register_value current{};
    if (Status s = GetVpRegisters(*ioctl_, fd_.get(), index_, {&name, 1}, {&current, 1}); !s) {
      return s;
    }
    old = current.low;
  }
  if (Status s = SetRegisterAndRip(name, ApplyMmioRead(pending_mmio_, old, value),
                                   pending_rip_ + pending_mmio_.length);
      !s) {
    return s;
  }
  pending_ = Pending::kNone;
  return Ok();
}

Status MshvVcpu::CompletePendingWithAllOnes() {
  if (pending_ == Pending::kIoIn) {
    const uint8_t ones[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    return CompleteIoIn({ones, pending_io_.size});
  }
  return CompleteMmioRead(~uint64_t{0});
}

}  // namespace virt::mshv
