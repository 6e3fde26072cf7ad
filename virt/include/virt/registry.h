// Registry: the backends this build knows, why each is (un)available, and run-time selection.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "virt/hypervisor.h"
#include "virt/result.h"

namespace virt {

// Why a backend cannot be used.
enum class Unavailability : uint8_t {
  kNone,              // available
  kNotBuilt,          // compiled out of this build
  kDeviceMissing,     // /dev/kvm, /dev/mshv or WinHvPlatform.dll absent
  kPermissionDenied,  // present but not accessible to this user
  kApiVersion,        // present but speaks another API version / lacks a required capability
  kOther,
};

const char* ToString(Unavailability why);

struct Availability {
  Unavailability why = Unavailability::kNone;
  std::string reason;  // human-readable detail, e.g. "/dev/kvm: No such file or directory"
  bool available() const { return why == Unavailability::kNone; }
};

// One backend: its name, a cheap probe and a factory.
struct BackendInfo {
  std::string name;
  std::function<Availability()> probe;
  std::function<Result<std::unique_ptr<Hypervisor>>()> open;
};

struct BackendStatus {
  std::string name;
  Availability availability;
};

// Picks a backend at run time. Open("auto") takes the first available backend in registration
// order; the environment variable VIRT_BACKEND (a backend name or "auto") replaces a request for
// "auto", so an operator can force a backend without rebuilding the VMM.
class Registry {
 public:
  using GetEnv = std::function<std::optional<std::string>(const char* name)>;
  static constexpr const char* kEnvVar = "VIRT_BACKEND";

  // getenv defaults to the process environment; tests pass their own.
  explicit Registry(std::vector<BackendInfo> backends, GetEnv getenv = {});

  // Every backend with its availability, in registration order.
  std::vector<BackendStatus> Probe() const;

  // Opens `name` ("kvm", "mshv", "whp" or "auto"). kNotFound for an unknown name (listing the
  // known ones); kUnavailable naming why, and for "auto" why each backend was unusable.
  Result<std::unique_ptr<Hypervisor>> Open(std::string_view name = "auto") const;

 private:
  std::vector<BackendInfo> backends_;
  GetEnv getenv_;
};

}  // namespace virt
