// GuestMemory on Windows: committed VirtualAlloc pages (zero-filled, 64 KiB-aligned).
#include "guest_memory.h"

#include <windows.h>

namespace virt::guest {

Result<GuestMemory> GuestMemory::Allocate(size_t size) {
  if (size == 0 || size % 4096 != 0) {
    return Error::Make(ErrorCode::kInvalidArgument, "GuestMemory::Allocate",
                       "size must be a non-zero multiple of 4 KiB");
  }
  void* p = ::VirtualAlloc(nullptr, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (p == nullptr) {
    Error error = Error::Make(ErrorCode::kNative, "VirtualAlloc");
    error.domain = NativeDomain::kHresult;
    error.native_code =
        static_cast<int64_t>(static_cast<uint32_t>(HRESULT_FROM_WIN32(::GetLastError())));
    return error;
  }
  return GuestMemory(static_cast<uint8_t*>(p), size);
}

void GuestMemory::Free(uint8_t* data, size_t /*size*/) noexcept {
  // MEM_RELEASE frees the whole reservation and requires size 0.
  if (data != nullptr) ::VirtualFree(data, 0, MEM_RELEASE);
}

}  // namespace virt::guest
