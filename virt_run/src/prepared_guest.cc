// PrepareGuest / LoadGuest: reading, validating and placing the kernel and its boot information.
#include "virt_run/prepared_guest.h"

#include <cstring>
#include <optional>

#include "virt_run/input_file.h"

namespace virt::run {

Checked<PreparedGuest> PrepareGuest(const Options& options) {
  PreparedGuest g;
  auto layout = GuestLayout::ForMemory(options.memory_mib);
  if (!layout) return Reject(layout.error());
  g.layout = *layout;

  auto kernel = ReadInputFile(options.kernel, kMaxKernelFileBytes, "KERNEL");
  if (!kernel) return Reject(kernel.error());
  g.kernel_file = std::move(*kernel);

  std::vector<uint8_t> initrd;  // copied into boot.bytes
  std::optional<BootModule> module;
  if (options.initrd) {
    auto bytes = ReadInputFile(*options.initrd, multiboot::kMaxModuleBytes, "--initrd");
    if (!bytes) return Reject(bytes.error());
    initrd = std::move(*bytes);
    module = BootModule{initrd, *options.initrd};
  }
  auto boot = BuildBootInfo(g.layout, options.kernel + " " + options.append, module);
  if (!boot) return Reject(boot.error());
  g.boot = std::move(*boot);

  auto image = ParseKernel(g.kernel_file, g.layout, g.boot.area);
  if (!image) return Reject("KERNEL " + options.kernel + ": " + image.error());
  g.kernel = std::move(*image);

  g.cpu = BootCpuState{g.kernel.entry,    g.boot.info_address, g.boot.gdt_address,
                       g.boot.gdt_limit,  g.boot.tss_address,  g.boot.tss_limit};
  return g;
}

void LoadGuest(const PreparedGuest& guest, std::span<uint8_t> low_ram) {
  LoadKernel(guest.kernel, guest.kernel_file, low_ram, /*zero_filled=*/true);
  std::memcpy(low_ram.data() + guest.boot.area.begin, guest.boot.bytes.data(),
              guest.boot.bytes.size());
}

}  // namespace virt::run
