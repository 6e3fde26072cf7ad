// Names of MpState values for logs and errors.
#include "virt/mp_state.h"

namespace virt {

const char* ToString(MpState state) {
  switch (state) {
    case MpState::kRunnable: return "runnable";
    case MpState::kUninitialized: return "uninitialized";
    case MpState::kInitReceived: return "init_received";
    case MpState::kHalted: return "halted";
    case MpState::kSipiReceived: return "sipi_received";
  }
  return "unknown";
}

}  // namespace virt
