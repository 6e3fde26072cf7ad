// GuestMemory on POSIX: anonymous private mappings (zero-filled by the kernel).
#include "guest_memory.h"

#include <sys/mman.h>

#include <cerrno>

namespace virt::guest {

Result<GuestMemory> GuestMemory::Allocate(size_t size) {
  if (size == 0 || size % 4096 != 0) {
    return Error::Make(ErrorCode::kInvalidArgument, "GuestMemory::Allocate",
                       "size must be a non-zero multiple of 4 KiB");
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Error::Errno("mmap", errno);
  return GuestMemory(static_cast<uint8_t*>(p), size);
}

void GuestMemory::Free(uint8_t* data, size_t size) noexcept {
  if (data != nullptr) ::munmap(data, size);
}

}  // namespace virt::guest
