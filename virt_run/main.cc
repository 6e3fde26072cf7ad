// virt-run: runs a multiboot test kernel on N vCPUs of any backend (see CONTRACT.md).
#include <span>

#include "virt/backends.h"
#include "virt_run/vmm.h"

int main(int argc, char** argv) {
  const std::span<const char* const> args(argv + (argc > 0 ? 1 : 0), argc > 0 ? argc - 1 : 0);
  return virt::run::Main(args, virt::DefaultRegistry(), stdout, stderr);
}
