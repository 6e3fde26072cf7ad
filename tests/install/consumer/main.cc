// Installed-package smoke test: the registry lists kvm, mshv and whp with their availability.
#include <cstdio>
#include <set>
#include <string>

#include "virt/backends.h"

int main() {
  std::set<std::string> names;
  for (const virt::BackendStatus& b : virt::DefaultRegistry().Probe()) {
    std::printf("%s: %s %s\n", b.name.c_str(), virt::ToString(b.availability.why),
                b.availability.reason.c_str());
    names.insert(b.name);
  }
  return names == std::set<std::string>{"kvm", "mshv", "whp"} ? 0 : 1;
}
