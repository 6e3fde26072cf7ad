// Doorbells: the optional capability of turning guest writes into Event signals (Partition::doorbells()).
#pragma once

#include <functional>
#include <memory>

#include "virt/doorbell_registration.h"
#include "virt/result.h"

namespace virt {

// Registers doorbells (KVM_IOEVENTFD, MSHV_IOEVENTFD, WHvRegisterPartitionDoorbellEvent, or the
// user-mode fallback). Thread-safe: device threads register and drop doorbells while vCPUs run.
class Doorbells {
 public:
  using ErrorHandler = std::function<void(const Error&)>;

  virtual ~Doorbells() = default;

  // A new doorbell with its own event. Errors leave nothing registered or open:
  // kInvalidArgument for a bad match (DoorbellMatch::Validate) or a length the backend cannot
  // match (kDoorbellAnyLength where supports_any_length() is false), kUnavailable for an
  // address space the hypervisor has no doorbells in (MSHV and WHP: port I/O; use
  // UserModeDoorbells there), kOverlap when it collides with a live registration
  // (DoorbellMatch::CollidesWith; on WHP also another length at a registered address, WHP's own
  // rule), kPartitionGone after the partition went, or the hypervisor's own error.
  virtual Result<std::unique_ptr<DoorbellRegistration>> Register(const DoorbellMatch& match) = 0;

  // Whether this backend can match kDoorbellAnyLength.
  virtual bool supports_any_length() const = 0;

  // Receives unregister failures of registrations destroyed without Release(). Default:
  // stderr. The handler must not call back into the doorbells or their registrations.
  virtual void SetErrorHandler(ErrorHandler handler) = 0;
};

}  // namespace virt
