// DefaultRegistry: a Registry with every backend this build knows (built or not).
#pragma once

#include "virt/registry.h"

namespace virt {

// kvm, mshv, whp in that order ("auto" prefers them in that order). Backends compiled out of
// this build are listed as "not built", so the error for "nothing available" names all three.
Registry DefaultRegistry();

}  // namespace virt
