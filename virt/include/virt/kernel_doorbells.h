// KernelDoorbells: the Doorbells of a backend whose hypervisor signals events on guest writes.
#pragma once

#include <memory>

#include "virt/doorbell_ops.h"
#include "virt/doorbells.h"

namespace virt {

class DoorbellCore;

// One implementation of the Doorbells contract over any DoorbellOps (KVM, MSHV, WHP): it
// validates matches, refuses collisions before the hypervisor sees them, creates each
// registration's event, and keeps the shared state alive for registrations that outlive the
// partition (they fail with kPartitionGone after Shutdown). Thread-safe.
class KernelDoorbells final : public Doorbells {
 public:
  struct Options {
    bool any_length = false;  // the hypervisor matches kDoorbellAnyLength
  };

  static std::unique_ptr<KernelDoorbells> Create(std::unique_ptr<DoorbellOps> ops,
                                                 Options options);
  ~KernelDoorbells() override;

  // Validate, collision check, Event::Create, ops Register; on any failure nothing is left.
  Result<std::unique_ptr<DoorbellRegistration>> Register(const DoorbellMatch& match) override;
  bool supports_any_length() const override;
  void SetErrorHandler(ErrorHandler handler) override;

  // The partition is going away (closing its fd / handle drops every registration): from now
  // on every call fails with kPartitionGone and none reaches the ops.
  void Shutdown();

  // Registrations alive now (for tests).
  size_t size() const;

 private:
  explicit KernelDoorbells(std::shared_ptr<DoorbellCore> core) : core_(std::move(core)) {}
  std::shared_ptr<DoorbellCore> core_;
};

}  // namespace virt
