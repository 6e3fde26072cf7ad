// WhpVcpuMpState: a WHP vCPU's MpState over WHvRegisterInternalActivityState.
#pragma once

#include <cstdint>
#include <optional>

#include "virt/mp_state.h"
#include "whp_partition.h"

namespace virt::whp {

// WHV_INTERNAL_ACTIVITY_REGISTER value for `state`: kRunnable 0, kUninitialized StartupSuspend
// (bit 0), kHalted HaltSuspend (bit 1); nullopt for kInitReceived and kSipiReceived, which WHP
// does not hold apart (its LAPIC has one wait-for-SIPI state, StartupSuspend, and applies a SIPI
// at once).
std::optional<uint64_t> ActivityFor(MpState state);
// The MpState of an activity register value: StartupSuspend -> kUninitialized (it wins over
// HaltSuspend: the VP runs nothing before a SIPI), HaltSuspend -> kHalted, 0 -> kRunnable;
// nullopt when IdleSuspend (bit 2) or a reserved bit is set.
std::optional<MpState> MpStateFor(uint64_t activity);

// Only for partitions with irqchip (WHP's LAPIC emulation), where the state is meaningful: an
// application processor is created in StartupSuspend and WHP's LAPIC starts it on SIPI. Run-thread
// only, while the vCPU is not in Run.
class WhpVcpuMpState final : public VcpuMpState {
 public:
  WhpVcpuMpState(WhpPartitionHandle& partition, uint32_t index)
      : partition_(partition), index_(index) {}

  // WHvGetVirtualProcessorRegisters {WHvRegisterInternalActivityState}; kUnavailable naming the
  // raw value for a state outside MpState (IdleSuspend, reserved bits).
  Result<MpState> GetMpState() override;
  // WHvSetVirtualProcessorRegisters {WHvRegisterInternalActivityState = ActivityFor(state)};
  // kUnavailable naming the state, before any call, for kInitReceived / kSipiReceived.
  // kRunnable on an application processor makes it run from its current registers (a VMM that
  // starts APs itself sets them first).
  Status SetMpState(MpState state) override;

 private:
  WhpPartitionHandle& partition_;
  uint32_t index_;
};

}  // namespace virt::whp
