// Registry: backend probing and run-time selection by name, "auto" or $VIRT_BACKEND.
#include "virt/registry.h"

#include <cstdlib>
#include <utility>

namespace virt {

const char* ToString(Unavailability why) {
  switch (why) {
    case Unavailability::kNone: return "available";
    case Unavailability::kNotBuilt: return "not built";
    case Unavailability::kDeviceMissing: return "device missing";
    case Unavailability::kPermissionDenied: return "permission denied";
    case Unavailability::kApiVersion: return "API version";
    case Unavailability::kOther: return "unavailable";
  }
  return "unavailable";
}

namespace {

std::string Describe(const std::string& name, const Availability& a) {
  std::string out = name + ": " + ToString(a.why);
  if (!a.reason.empty()) out += " (" + a.reason + ")";
  return out;
}

}  // namespace

Registry::Registry(std::vector<BackendInfo> backends, GetEnv getenv)
    : backends_(std::move(backends)), getenv_(std::move(getenv)) {
  if (!getenv_) {
    getenv_ = [](const char* var) -> std::optional<std::string> {
      const char* value = std::getenv(var);
      if (value == nullptr) return std::nullopt;
      return std::string(value);
    };
  }
}

std::vector<BackendStatus> Registry::Probe() const {
  std::vector<BackendStatus> out;
  out.reserve(backends_.size());
  for (const BackendInfo& b : backends_) out.push_back({b.name, b.probe()});
  return out;
}

Result<std::unique_ptr<Hypervisor>> Registry::Open(std::string_view name) const {
  std::string wanted(name);
  if (wanted.empty() || wanted == "auto") {
    if (auto env = getenv_(kEnvVar); env && !env->empty()) wanted = *env;
  }
  if (wanted.empty()) wanted = "auto";

  if (wanted != "auto") {
    for (const BackendInfo& b : backends_) {
      if (b.name != wanted) continue;
      Availability a = b.probe();
      if (!a.available()) {
        return Error::Make(ErrorCode::kUnavailable, "Registry::Open", Describe(b.name, a));
      }
      return b.open();
    }
    std::string known;
    for (const BackendInfo& b : backends_) known += (known.empty() ? "" : ", ") + b.name;
    return Error::Make(ErrorCode::kNotFound, "Registry::Open",
                       "unknown backend \"" + wanted + "\" (known: " + known + ", auto)");
  }

  std::string why;
  for (const BackendInfo& b : backends_) {
    Availability a = b.probe();
    if (a.available()) {
      auto opened = b.open();
      if (opened) return opened;
      a = {Unavailability::kOther, opened.error().Message()};
    }
    why += (why.empty() ? "" : "; ") + Describe(b.name, a);
  }
  return Error::Make(ErrorCode::kUnavailable, "Registry::Open",
                     "no backend available: " + (why.empty() ? std::string("none registered") : why));
}

}  // namespace virt
