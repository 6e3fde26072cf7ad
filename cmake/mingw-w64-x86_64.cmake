# Cross-build for 64-bit Windows with mingw-w64 (posix thread model, so std::thread/std::mutex
# work), and run the test executables under Wine through CMAKE_CROSSCOMPILING_EMULATOR.
# Debian packages: g++-mingw-w64-x86-64-posix, mingw-w64-x86-64-dev, wine64.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_virt_mingw x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_virt_mingw}-gcc-posix)
set(CMAKE_CXX_COMPILER ${_virt_mingw}-g++-posix)
set(CMAKE_RC_COMPILER ${_virt_mingw}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${_virt_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Link libgcc, libstdc++ and winpthread statically: the .exe then runs under Wine (or on a
# Windows host) without copying the mingw runtime DLLs next to it.
# --allow-multiple-definition: with GCC 12 in C++23 mode std::type_info::operator== is an inline
# function in every object and also an out-of-line one in the static libstdc++.a (GCC bug
# 110572); both are the same comparison, so letting the first one win is safe.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-static -static-libgcc -static-libstdc++ -Wl,--allow-multiple-definition")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")

# Debian's wine64 package installs the 64-bit loader as /usr/lib/wine/wine64 (/usr/bin/wine is
# a wrapper that complains about a missing wine32 on every run).
find_program(VIRT_WINE64 NAMES wine64 PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(VIRT_WINE64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${VIRT_WINE64})
endif()
