// KvmVcpu: KVM_RUN, exit decoding, completions and the lock-free immediate_exit + signal cancel.
#include "kvm_vcpu.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <string>
#include <utility>

namespace virt::kvm {
namespace {

void IgnoreKick(int) {}

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = IgnoreKick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(KvmVcpu::KickSignal(), &sa, nullptr);
  });
}

}  // namespace

int KvmVcpu::KickSignal() { return SIGRTMIN + 3; }

Result<std::unique_ptr<KvmVcpu>> KvmVcpu::Create(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                 uint32_t index, const KvmVcpuConfig& config,
                                                 const Cpuid& cpuid) {
  auto fd = ioctl->CreateVcpu(vm_fd, index);
  if (!fd) return fd.error();
  KvmFd vcpu(ioctl, *fd);
  auto run = ioctl->MapRun(vcpu.get(), static_cast<size_t>(config.mmap_size));
  if (!run) return run.error();
  std::unique_ptr<KvmVcpu> out(new KvmVcpu(ioctl, std::move(vcpu), *run, index, config));
  if (!cpuid.empty()) {
    if (Status s = out->SetCpuid(cpuid); !s) return s.error();
  }
  InstallKickHandler();
  return out;
}

KvmVcpu::KvmVcpu(std::shared_ptr<KvmIoctl> ioctl, KvmFd fd, kvm_run* run, uint32_t index,
                 const KvmVcpuConfig& config)
    : ioctl_(std::move(ioctl)),
      fd_(std::move(fd)),
      run_(run),
      run_size_(static_cast<size_t>(config.mmap_size)),
      index_(index),
      config_(config),
      msrs_(config.saveable_msrs ? *config.saveable_msrs : std::vector<uint32_t>{}) {}

KvmVcpu::~KvmVcpu() { (void)ioctl_->UnmapRun(run_, run_size_); }

void KvmVcpu::Cancel() {
  // kCancel is the request; immediate_exit covers a runner that passed its check but has not
  // entered KVM_RUN yet, the signal one inside it (KVM returns EINTR when a signal is pending).
  uint32_t seen = state_.load(std::memory_order_relaxed);
  while (!state_.compare_exchange_weak(seen, (seen | kCancel) + ((seen & kInRun) ? kKicker : 0),
                                       std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
  __atomic_store_n(&run_->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if ((seen & kInRun) == 0) return;  // the next check in Run sees kCancel
  {
    std::lock_guard lock(kick_mu_);
    if (state_.load(std::memory_order_acquire) & kInRun) {
      pthread_kill(runner_.load(std::memory_order_relaxed), KickSignal());
    }
  }
  state_.fetch_sub(kKicker, std::memory_order_release);
}

uint32_t KvmVcpu::LeaveRun(uint32_t also_clear) {
  const uint32_t was = state_.fetch_and(~(kInRun | also_clear), std::memory_order_acq_rel);
  if (was >= kKicker) {
    // A Cancel may be about to signal this thread: wait until it has (or has seen kInRun clear).
    std::lock_guard lock(kick_mu_);
  }
  return was;
}

Result<VcpuExit> KvmVcpu::Run() {
  pending_ = Pending::kNone;
  runner_.store(pthread_self(), std::memory_order_relaxed);
  for (;;) {
    if (state_.fetch_or(kInRun, std::memory_order_acq_rel) & kCancel) {
      // A completion written before this Run is still consumed by the next KVM_RUN: KVM
      // finishes a pending IN/MMIO read before it looks at immediate_exit. immediate_exit is
      // cleared before kCancel, so a later Cancel's store of 1 is never lost.
      __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
      LeaveRun(kCancel);
      return VcpuExit{CancelledExit{}};
    }
    entered_ = true;
    Status ran = ioctl_->Run(fd_.get());
    const uint32_t was = LeaveRun(0);
    if (!ran) {
      // EINTR: our kick (seen at the top of the loop) or a foreign signal (run again).
      if (ran.error().native_code == EINTR || ran.error().native_code == EAGAIN) {
        // No Cancel pending: an immediate_exit left by a Cancel that was consumed together
        // with an earlier one is cleared (a new Cancel sets kCancel, seen at the top).
        if ((was & kCancel) == 0) __atomic_store_n(&run_->immediate_exit, 0, __ATOMIC_SEQ_CST);
        continue;
      }
      return ran.error();
    }
    if (run_->exit_reason == KVM_EXIT_INTR) continue;
    return Decode();
  }
}

VcpuExit KvmVcpu::Decode() {
  switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
      IoExit io;
      io.port = run_->io.port;
      io.size = run_->io.size;
      io.is_write = run_->io.direction == KVM_EXIT_IO_OUT;
      io.count = run_->io.count;
      io.data = {reinterpret_cast<const uint8_t*>(run_) + run_->io.data_offset,
                 size_t{io.size} * io.count};
      if (!io.is_write) pending_ = Pending::kIoIn;
      return io;
    }
    case KVM_EXIT_MMIO: {
      MmioExit mmio;
      mmio.address = run_->mmio.phys_addr;
      mmio.size = static_cast<uint8_t>(run_->mmio.len);
      mmio.is_write = run_->mmio.is_write != 0;
      if (mmio.is_write) {
        std::memcpy(&mmio.value, run_->mmio.data, std::min<size_t>(mmio.size, 8));
      } else {
        pending_ = Pending::kMmioRead;
      }
      return mmio;
    }
    case KVM_EXIT_HLT:
      return HaltExit{};
    case KVM_EXIT_SHUTDOWN:
      return ShutdownExit{};
    case KVM_EXIT_INTERNAL_ERROR: {
      InternalErrorExit e;
      e.suberror = run_->internal.suberror;
      // ndata counts the entries of e.data that are valid, so it may not exceed its size.
      e.ndata = std::min<uint32_t>(run_->internal.ndata, e.data.size());
      for (uint32_t i = 0; i < e.ndata; ++i) {
        e.data[i] = run_->internal.data[i];
      }
      return e;
    }
    case KVM_EXIT_FAIL_ENTRY: {
      InternalErrorExit e;
      e.suberror = KVM_EXIT_FAIL_ENTRY;
      e.ndata = 1;
      e.data[0] = run_->fail_entry.hardware_entry_failure_reason;
      return e;
    }
    default:
      return UnknownExit{run_->exit_reason};
  }
}

Status KvmVcpu::CompleteIoIn(std::span<const uint8_t> data) {
  if (pending_ != Pending::kIoIn) {
    return Error::Make(ErrorCode::kFailedPrecondition, "KvmVcpu::CompleteIoIn",
                       "the last exit was not a port IN");
  }
  const size_t want = size_t{run_->io.size} * run_->io.count;
  if (data.size() != want) {
    return Error::Make(ErrorCode::kInvalidArgument, "KvmVcpu::CompleteIoIn",
                       "got " + std::to_string(data.size()) + " bytes, the IN wants " +
                           std::to_string(want));
  }
  std::memcpy(reinterpret_cast<uint8_t*>(run_) + run_->io.data_offset, data.data(), want);
  pending_ = Pending::kNone;
  return Ok();
}

Status KvmVcpu::CompleteMmioRead(uint64_t value) {
  if (pending_ != Pending::kMmioRead) {
    return Error::Make(ErrorCode::kFailedPrecondition, "KvmVcpu::CompleteMmioRead",
                       "the last exit was not an MMIO read");
  }
  std::memcpy(run_->mmio.data, &value, std::min<size_t>(run_->mmio.len, 8));
  pending_ = Pending::kNone;
  return Ok();
}

}  // namespace virt::kvm
