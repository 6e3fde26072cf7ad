// KvmVcpu: a KVM vCPU fd with its mmapped kvm_run, exit decoding and cross-thread cancel.
#pragma once

#include <pthread.h>

#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "kvm_fd.h"
#include "virt/cpuid.h"
#include "virt/vcpu.h"

namespace virt::kvm {

class KvmVcpu final : public Vcpu, public VcpuCpuid, public VcpuMpState {
 public:
  // KVM_CREATE_VCPU, mmap of kvm_run, KVM_SET_CPUID2 with `cpuid` (the partition's default for
  // this index; skipped when empty). `mp_state`: the host has KVM_CAP_MP_STATE. Everything is
  // released again on failure.
  static Result<std::unique_ptr<KvmVcpu>> Create(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                 uint32_t index, int mmap_size,
                                                 const Cpuid& cpuid, bool mp_state);
  ~KvmVcpu() override;

  uint32_t index() const override { return index_; }
  Result<VcpuExit> Run() override;
  Status CompleteIoIn(std::span<const uint8_t> data) override;
  Status CompleteMmioRead(uint64_t value) override;
  void Cancel() override;

  Result<Registers> GetRegisters() override;
  Status SetRegisters(const Registers& regs) override;
  Result<SpecialRegisters> GetSpecialRegisters() override;
  Status SetSpecialRegisters(const SpecialRegisters& sregs) override;
  Result<FpuState> GetFpu() override;
  Status SetFpu(const FpuState& fpu) override;
  Status GetMsrs(std::span<MsrEntry> msrs) override;
  Status SetMsrs(std::span<const MsrEntry> msrs) override;
  VcpuCpuid* cpuid() override { return this; }
  VcpuMpState* mp_state() override { return mp_state_supported_ ? this : nullptr; }

  // VcpuCpuid. KVM_GET_CPUID2 (capacity 256 entries, KVM's maximum).
  Result<Cpuid> GetCpuid() override;
  // KVM_SET_CPUID2. kFailedPrecondition once Run has entered KVM_RUN; kInvalidArgument for an
  // empty table or more than 256 entries (before any ioctl). KVM keeps the old table when it
  // refuses the new one.
  Status SetCpuid(const Cpuid& cpuid) override;

  // VcpuMpState. KVM_GET_MP_STATE / KVM_SET_MP_STATE with KVM_MP_STATE_RUNNABLE,
  // _UNINITIALIZED, _INIT_RECEIVED, _HALTED, _SIPI_RECEIVED; another state read back (e.g.
  // AP_RESET_HOLD of SEV-ES) gives kUnavailable with its number.
  Result<MpState> GetMpState() override;
  Status SetMpState(MpState state) override;

  // The signal used to kick a vCPU thread out of KVM_RUN (SIGRTMIN + 3 by default; its handler
  // does nothing). A VMM that uses that signal itself must not block it on vCPU threads.
  static int KickSignal();

 private:
  enum class Pending : uint8_t { kNone, kIoIn, kMmioRead };

  KvmVcpu(std::shared_ptr<KvmIoctl> ioctl, KvmFd fd, kvm_run* run, size_t run_size,
          uint32_t index, bool mp_state);
  VcpuExit Decode();

  std::shared_ptr<KvmIoctl> ioctl_;
  KvmFd fd_;
  kvm_run* run_;
  size_t run_size_;
  uint32_t index_;
  Pending pending_ = Pending::kNone;
  bool entered_ = false;  // KVM_RUN was called once: CPUID is frozen (run thread only)
  const bool mp_state_supported_;

  std::mutex kick_mu_;
  bool cancel_requested_ = false;  // guarded by kick_mu_, set together with immediate_exit
  bool in_run_ = false;            // guarded by kick_mu_: runner_ is inside KVM_RUN
  pthread_t runner_{};   // guarded by kick_mu_
};

}  // namespace virt::kvm
