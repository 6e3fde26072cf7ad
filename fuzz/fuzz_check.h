// FUZZ_CHECK: the fuzz targets' assertion; a violated property traps, which libFuzzer reports.
#pragma once

// Traps (SIGILL: libFuzzer's "deadly signal", with the input saved) when `cond` is false. Not
// assert(): it must also fire in builds with NDEBUG.
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)
