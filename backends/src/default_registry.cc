// DefaultRegistry: wires the built backends (and "not built" placeholders) into a Registry.
#include "virt/backends.h"

#if VIRT_HAVE_KVM
#include "virt/kvm/kvm_hypervisor.h"
#endif
#if VIRT_HAVE_MSHV
#include "virt/mshv/mshv_hypervisor.h"
#endif
#if VIRT_HAVE_WHP
#include "virt/whp/whp_hypervisor.h"
#endif

namespace virt {
namespace {

BackendInfo NotBuilt(const char* name, const char* why) {
  return BackendInfo{
      name,
      [why] { return Availability{Unavailability::kNotBuilt, why}; },
      [name, why]() -> Result<std::unique_ptr<Hypervisor>> {
        return Error::Make(ErrorCode::kUnavailable, "Registry::Open",
                           std::string(name) + ": not built (" + why + ")");
      },
  };
}

}  // namespace

Registry DefaultRegistry() {
  std::vector<BackendInfo> backends;
#if VIRT_HAVE_KVM
  backends.push_back(kvm::KvmBackendInfo());
#else
  backends.push_back(NotBuilt("kvm", "VIRT_BUILD_KVM is off or the target is not Linux"));
#endif
#if VIRT_HAVE_MSHV
  backends.push_back(mshv::MshvBackendInfo());
#else
  backends.push_back(NotBuilt("mshv", "VIRT_BUILD_MSHV is off or the target is not Linux"));
#endif
#if VIRT_HAVE_WHP
  backends.push_back(whp::WhpBackendInfo());
#else
  backends.push_back(NotBuilt("whp", "WHP needs a Windows build (VIRT_BUILD_WHP on a WIN32 target)"));
#endif
  return Registry(std::move(backends));
}

}  // namespace virt
