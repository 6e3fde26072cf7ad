// DoorbellRegistration: one registered doorbell; destroying it unregisters it.
#pragma once

#include "virt/doorbell_match.h"
#include "virt/event.h"
#include "virt/result.h"

namespace virt {

// A guest write matching match() signals event() without a trip through the VMM (kernel
// ioeventfd / WHP doorbell where the backend has one; the user-mode fallback signals it from
// the VMM's exit handling). Several rings before a device waits coalesce into one wake-up with
// their count (eventfd semantics). Thread-safe. Destroying the registration unregisters it (the
// hypervisor call with the same match), then closes the event; a failure there goes to the
// Doorbells error handler, and Release() returns it instead. After the partition is gone,
// Release fails with kPartitionGone and destruction only closes the event.
class DoorbellRegistration {
 public:
  virtual ~DoorbellRegistration() = default;

  virtual const DoorbellMatch& match() const = 0;
  // The event a device waits on; the same handle for the registration's whole life.
  virtual const Event& event() const = 0;

  // Unregisters now. A second call fails with kAlreadyReleased.
  virtual Status Release() = 0;
};

}  // namespace virt
