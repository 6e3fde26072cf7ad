// UserModeDoorbells: doorbells for any backend, rung by the VMM's own exit handling.
#pragma once

#include <memory>

#include "virt/doorbells.h"
#include "virt/vcpu_exit.h"

namespace virt {

class DoorbellCore;

// The Doorbells contract without hypervisor help: the VMM hands each write exit to Dispatch
// before its own devices; a matching registration's event is signalled and Dispatch says the
// exit was consumed (the VMM then just runs the vCPU again: KVM completes the write itself, MSHV
// and WHP vCPUs advance RIP for writes before returning the exit). Same matching rules, errors
// and lifetime as the kernel path, so a device cannot tell them apart; every ring costs one
// exit. Any length can be matched. Thread-safe: Dispatch from every vCPU thread while devices
// register and drop doorbells; Dispatch takes a shared lock and makes one write(2) per ring.
class UserModeDoorbells final : public Doorbells {
 public:
  static std::unique_ptr<UserModeDoorbells> Create();
  // Shutdown.
  ~UserModeDoorbells() override;

  Result<std::unique_ptr<DoorbellRegistration>> Register(const DoorbellMatch& match) override;
  bool supports_any_length() const override { return true; }
  void SetErrorHandler(ErrorHandler handler) override;

  // Signals the registration that `io` (an OUT) or `mmio` (a write) rings and returns true;
  // false when none matches (reads, string I/O and unmatched writes), leaving the exit to the
  // VMM. A failed signal goes to the error handler; the exit still counts as consumed.
  bool Dispatch(const IoExit& io);
  bool Dispatch(const MmioExit& mmio);
  // Dispatch of whichever write the exit is; false for every other exit.
  bool Dispatch(const VcpuExit& exit);

  // Registrations outliving this object fail with kPartitionGone from now on.
  void Shutdown();

 private:
  explicit UserModeDoorbells(std::shared_ptr<DoorbellCore> core) : core_(std::move(core)) {}
  std::shared_ptr<DoorbellCore> core_;
};

}  // namespace virt
