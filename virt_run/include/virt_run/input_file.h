// ReadInputFile: a whole kernel or initrd file in memory, with a size limit and clear errors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "virt_run/checked.h"

namespace virt::run {

// The bytes of `path`. Errors name `what` ("KERNEL", "--initrd") and the path: cannot open
// (strerror), not a regular file, larger than `max_bytes` (checked before reading), a read
// error.
Checked<std::vector<uint8_t>> ReadInputFile(const std::string& path, uint64_t max_bytes,
                                            const char* what);

}  // namespace virt::run
