// PrepareGuest: everything about the guest that can be checked before a hypervisor is opened.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "virt_run/boot_cpu.h"
#include "virt_run/boot_info.h"
#include "virt_run/checked.h"
#include "virt_run/guest_layout.h"
#include "virt_run/kernel_loader.h"
#include "virt_run/options.h"

namespace virt::run {

inline constexpr uint64_t kMaxKernelFileBytes = 1ull << 30;

struct PreparedGuest {
  GuestLayout layout;
  std::vector<uint8_t> kernel_file;
  KernelImage kernel;
  BootInfo boot;
  BootCpuState cpu;
};

// Reads the kernel and the initrd, lays out RAM for -m, builds the boot information (command
// line "<KERNEL> <append>", as QEMU passes it) and checks the kernel against both.
Checked<PreparedGuest> PrepareGuest(const Options& options);

// Copies the kernel's segments and the boot information into fresh (zero) low RAM.
void LoadGuest(const PreparedGuest& guest, std::span<uint8_t> low_ram);

}  // namespace virt::run
