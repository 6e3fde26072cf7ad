// vmm_commands: where virt-run, QEMU and the kernels are, and the two command lines that boot
// one kernel the same way under each.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <vector>

namespace virt_bench {

// A kernel run: the same file, vCPU count, RAM and arguments on both sides.
struct BootSpec {
  std::string kernel;  // path, given to both VMMs as is (so argv[0] of the guest is the same)
  uint32_t smp = 1;
  uint32_t memory_mib = 128;  // virt-run's default, given explicitly to both
  std::string append;         // the multiboot command line after argv[0]; empty for none
};

// The virt-run binary: $VIRT_BENCH_VIRT_RUN, else the one CMake built (the compile definition
// VIRT_BENCH_BUILT_VIRT_RUN). Fails with why when neither names an executable file.
std::expected<std::string, std::string> VirtRunPath();

// QEMU: $VIRT_BENCH_QEMU, else qemu-system-x86_64 on $PATH. Fails with "QEMU not installed ..."
// when there is none.
std::expected<std::string, std::string> QemuPath();

// A test kernel of virt_run/kernels (e.g. "console.flat"): from $VIRT_BENCH_TEST_KERNEL_DIR,
// else the directory CMake built them in. Fails with why when the file is not there.
std::expected<std::string, std::string> TestKernelPath(const std::string& file);

// One of bench/kernels' (e.g. "first_out.flat"): from $VIRT_BENCH_KERNEL_DIR, else CMake's.
std::expected<std::string, std::string> BenchKernelPath(const std::string& file);

// qemu-system-x86_64 -accel kvm -cpu host -kernel K -display none -serial stdio
//   -device isa-debug-exit,iobase=0xf4,iosize=4 -no-reboot -nodefaults -smp N -m M [-append A]
std::vector<std::string> QemuCommand(const std::string& qemu, const BootSpec& spec);

// virt-run --backend kvm --smp N -m M --timeout 120 [--append A] K
std::vector<std::string> VirtRunCommand(const std::string& virt_run, const BootSpec& spec);

}  // namespace virt_bench
