# Turns a binary file into a C++ source defining a byte array: -DIN=... -DOUT=... -DNAME=...
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" len)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}" "// Generated from ${IN} by embed.cmake; do not edit.\n#include <cstdint>\n#include <span>\nnamespace virt::guest {\nalignas(16) static const uint8_t kImage[] = {${bytes}};\nstd::span<const uint8_t> ${NAME}() { return kImage; }\n}  // namespace virt::guest\n")
