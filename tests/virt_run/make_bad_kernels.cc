// Writes the crafted bad kernel files of bad_kernel_cases.h into a directory (run at build time):
// make_bad_kernels DIR. The same bytes on every run.
#include <cstdio>
#include <string>

#include "bad_kernel_cases.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_bad_kernels DIR\n");
    return 2;
  }
  for (const auto& k : virt::run::testing::BadKernels()) {
    const std::string path = std::string(argv[1]) + "/" + k.name + ".elf";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    // An empty case (the empty file) writes nothing: its data() may be null, which fwrite's
    // nonnull argument forbids even for 0 bytes (UBSan, asan preset).
    if (f == nullptr ||
        (!k.bytes.empty() &&
         std::fwrite(k.bytes.data(), 1, k.bytes.size(), f) != k.bytes.size()) ||
        std::fclose(f) != 0) {
      std::perror(path.c_str());
      return 1;
    }
  }
  return 0;
}
