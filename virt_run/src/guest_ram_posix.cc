// GuestRam on POSIX: one anonymous private mapping without swap reservation.
#include <sys/mman.h>

#include <cerrno>

#include "virt_run/guest_ram.h"

namespace virt::run {

Result<GuestRam> GuestRam::Allocate(const GuestLayout& layout) {
  const size_t size = layout.ram_bytes;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Error::Errno("mmap", errno, "guest RAM");
  return GuestRam(static_cast<uint8_t*>(p), size, layout);
}

void GuestRam::Free(uint8_t* data, size_t size) noexcept {
  if (data != nullptr) ::munmap(data, size);
}

}  // namespace virt::run
