// DoorbellOps: the two hypervisor calls a backend supplies to KernelDoorbells.
#pragma once

#include "virt/doorbell_match.h"
#include "virt/event.h"
#include "virt/result.h"

namespace virt {

// Exactly what differs between hypervisors with in-kernel doorbells: one call each, no policy
// (KVM_IOEVENTFD, MSHV_IOEVENTFD, WHvRegister/UnregisterPartitionDoorbellEvent). The match has
// been validated and checked for collisions already. KernelDoorbells serialises registration
// changes on one lock and makes no call after KernelDoorbells::Shutdown, so an implementation
// may hold a bare fd / handle of the partition.
class DoorbellOps {
 public:
  virtual ~DoorbellOps() = default;

  // Makes writes matching `match` signal `event`.
  virtual Status Register(const DoorbellMatch& match, const Event& event) = 0;
  // Undoes Register with the same arguments.
  virtual Status Unregister(const DoorbellMatch& match, const Event& event) = 0;
};

}  // namespace virt
