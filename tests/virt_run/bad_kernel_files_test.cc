// The real virt-run binary on each crafted bad kernel file written at build time into
// VIRT_BAD_KERNEL_DIR (bad_kernel_cases.h): exit status 2 and its one-line message.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "bad_kernel_cases.h"
#include "run_binary.h"

namespace virt::run {
namespace testing {
// Names the case in gtest output instead of dumping its bytes.
inline void PrintTo(const BadKernel& k, std::ostream* os) { *os << k.name; }
}  // namespace testing
namespace {

using testing::BadKernel;

class BadKernelFileTest : public ::testing::TestWithParam<BadKernel> {};

TEST_P(BadKernelFileTest, Exits2WithItsOneLineMessage) {
  const BadKernel& k = GetParam();
  const std::string path = std::string(VIRT_BAD_KERNEL_DIR) + "/" + k.name + ".elf";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path << " was not generated";
  const std::vector<uint8_t> on_disk{std::istreambuf_iterator<char>(in), {}};
  ASSERT_EQ(on_disk, k.bytes) << path << " is stale (rebuild)";

  std::vector<std::string> args = k.args;
  args.push_back(path);
  const auto r = testing::RunBinary(VIRT_RUN_BINARY, args);
  EXPECT_EQ(r.status, 2) << r.err;
  const std::string prefix = "virt-run: KERNEL " + path + ": ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
  EXPECT_NE(r.err.find(k.message, prefix.size()), std::string::npos)
      << "want \"" << k.message << "\" in: " << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  EXPECT_EQ(r.out, "");
}

INSTANTIATE_TEST_SUITE_P(Files, BadKernelFileTest, ::testing::ValuesIn(testing::BadKernels()),
                         [](const ::testing::TestParamInfo<BadKernel>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace virt::run
