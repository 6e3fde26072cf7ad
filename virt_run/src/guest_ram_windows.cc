// GuestRam on Windows: one VirtualAlloc reservation, committed (pages are zero on first touch).
#include <windows.h>

#include "virt_run/guest_ram.h"

namespace virt::run {

Result<GuestRam> GuestRam::Allocate(const GuestLayout& layout) {
  const size_t size = layout.ram_bytes;
  void* p = ::VirtualAlloc(nullptr, size, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (p == nullptr) {
    return Error{ErrorCode::kNative, "VirtualAlloc",
                 static_cast<int64_t>(HRESULT_FROM_WIN32(::GetLastError())),
                 NativeDomain::kHresult, "guest RAM"};
  }
  return GuestRam(static_cast<uint8_t*>(p), size, layout);
}

void GuestRam::Free(uint8_t* data, size_t) noexcept {
  if (data != nullptr) ::VirtualFree(data, 0, MEM_RELEASE);
}

}  // namespace virt::run
