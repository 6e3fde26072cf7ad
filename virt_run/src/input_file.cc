// ReadInputFile: stat, size check, one read.
#include "virt_run/input_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace virt::run {

Checked<std::vector<uint8_t>> ReadInputFile(const std::string& path, uint64_t max_bytes,
                                            const char* what) {
  const std::string name = std::string(what) + " " + path + ": ";
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return Reject(name + std::strerror(errno));
  struct stat st {};
  if (::fstat(fileno(f.get()), &st) != 0) return Reject(name + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Reject(name + "not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    return Reject(name + std::to_string(size) + " bytes, more than the " +
                  std::to_string(max_bytes) + " allowed");
  }
  std::vector<uint8_t> bytes(size);
  if (size > 0 && std::fread(bytes.data(), 1, size, f.get()) != size) {
    return Reject(name + "read error" + (std::ferror(f.get()) ? std::string(": ") + std::strerror(errno) : ""));
  }
  return bytes;
}

}  // namespace virt::run
