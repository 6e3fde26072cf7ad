// WhpDoorbellOps: WHvRegisterPartitionDoorbellEvent doorbells under the shared KernelDoorbells.
#pragma once

#include <memory>

#include "virt/doorbell_ops.h"
#include "virt/whp/whp_api.h"
#include "virt/whp/whp_types.h"

namespace virt::whp {

// One WHv call per registration change on the partition handle, which KernelDoorbells never
// uses after Shutdown (WhpPartition shuts it down before dropping its share of the handle;
// WHvDeletePartition then unregisters whatever is left). The payload, WHV_DOORBELL_MATCH_DATA:
// GuestAddress = the MMIO address; MatchOnLength with Length 1/2/4/8, or neither (Length 0) for
// kDoorbellAnyLength, which WHP matches natively ("a write of any length"); MatchOnValue with
// Value for a data match, else Value 0; Reserved 0. WHvUnregisterPartitionDoorbellEvent finds the
// registration by those exact fields, so Unregister sends what Register sent. WHP signals the
// event's native HANDLE as SetEvent would (virt::Event counts that as one signal on a drain).
//
// WHP facts that reach the VMM:
//  - Doorbells match guest physical addresses only: WHV_DOORBELL_MATCH_DATA has no port I/O
//    form. A port match is refused with kUnavailable before any WHv call (use UserModeDoorbells
//    for ports).
//  - WHP allows one length per address (several data matches of that length may share it).
//    KernelDoorbells refuses every collision of KVM's rule first; a doorbell of another length
//    at a registered address is WHP's conflict, answered ERROR_HV_INVALID_PARAMETER, which
//    Register reports as kOverlap with that HRESULT kept.
//  - A doorbell inside a page mapped with WHvMapGpaRange unmaps that page while registered
//    (other writes to it exit as MemoryAccess), and WHP recognises only some store instructions
//    as a ring: any other write to the address still reaches the VMM as an MMIO exit.
class WhpDoorbellOps final : public DoorbellOps {
 public:
  WhpDoorbellOps(std::shared_ptr<WhpApi> api, WHV_PARTITION_HANDLE partition)
      : api_(std::move(api)), partition_(partition) {}

  // WHvRegisterPartitionDoorbellEvent(partition, ToWhp(match), HandleOf(event)).
  Status Register(const DoorbellMatch& match, const Event& event) override;
  // WHvUnregisterPartitionDoorbellEvent(partition, ToWhp(match)).
  Status Unregister(const DoorbellMatch& match, const Event& event) override;

  // The WHV_DOORBELL_MATCH_DATA for an MMIO `match`.
  static WHV_DOORBELL_MATCH_DATA ToWhp(const DoorbellMatch& match);
  // The HANDLE WHP signals: the event object on Windows; elsewhere (the mock suites) the
  // eventfd number carried in a HANDLE.
  static HANDLE HandleOf(const Event& event);

 private:
  std::shared_ptr<WhpApi> api_;
  WHV_PARTITION_HANDLE partition_;
};

}  // namespace virt::whp
