// WriteTempFile: a file only this test of this process uses (ctest runs tests in parallel,
// and other builds of the tree may run the same tests at the same time).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace virt::run::testing {

inline std::string TempPath(const std::string& name) {
  static const std::string token = [] {
    std::random_device rd;
    return std::to_string(rd()) + std::to_string(rd());
  }();
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  return ::testing::TempDir() + "virt_run_" + token + "_" + (test ? test->name() : "none") + "_" +
         name;
}

// Removes the files written by WriteTempFile when the test program exits.
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    for (const std::string& p : paths) std::remove(p.c_str());
  }
};

inline std::string WriteTempFile(const std::string& name, const std::vector<uint8_t>& bytes) {
  static TempFiles files;
  const std::string path = TempPath(name);
  files.paths.push_back(path);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path;
}

}  // namespace virt::run::testing
