// KvmVcpu: a KVM vCPU fd with its mmapped kvm_run, exit decoding and cross-thread cancel.
#pragma once

#include <pthread.h>

#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "kvm_fd.h"
#include "virt/vcpu.h"

namespace virt::kvm {

class KvmVcpu final : public Vcpu {
 public:
  // KVM_CREATE_VCPU, mmap of kvm_run, KVM_SET_CPUID2 with the host's supported CPUID (APIC IDs
  // set to `index`). Everything is released again on failure.
  static Result<std::unique_ptr<KvmVcpu>> Create(std::shared_ptr<KvmIoctl> ioctl, int vm_fd,
                                                 uint32_t index, int mmap_size,
                                                 const std::vector<uint8_t>& supported_cpuid);
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

  // The signal used to kick a vCPU thread out of KVM_RUN (SIGRTMIN + 3 by default; its handler
  // does nothing). A VMM that uses that signal itself must not block it on vCPU threads.
  static int KickSignal();

 private:
  enum class Pending : uint8_t { kNone, kIoIn, kMmioRead };

  KvmVcpu(std::shared_ptr<KvmIoctl> ioctl, KvmFd fd, kvm_run* run, size_t run_size,
          uint32_t index);
  VcpuExit Decode();

  std::shared_ptr<KvmIoctl> ioctl_;
  KvmFd fd_;
  kvm_run* run_;
  size_t run_size_;
  uint32_t index_;
  Pending pending_ = Pending::kNone;

  std::mutex kick_mu_;
  bool cancel_requested_ = false;  // guarded by kick_mu_, set together with immediate_exit
  bool in_run_ = false;            // guarded by kick_mu_: runner_ is inside KVM_RUN
  pthread_t runner_{};   // guarded by kick_mu_
};

}  // namespace virt::kvm
