// Checks Registry backend selection ("auto", by name, $VIRT_BACKEND) and its error messages, using fake backends and a fake environment.
#include "virt/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace virt {
namespace {

using ::testing::HasSubstr;

// A backend that opens but cannot create partitions; name() tells which backend was opened.
class FakeHypervisor : public Hypervisor {
 public:
  explicit FakeHypervisor(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Result<std::unique_ptr<Partition>> CreatePartition(const PartitionConfig&) override {
    return Error::Make(ErrorCode::kUnavailable, "FakeHypervisor::CreatePartition", "fake");
  }

 private:
  std::string name_;
};

struct FakeBackend {
  std::string name;
  Availability availability;
  std::optional<Error> open_error;  // open() fails with this when set
};

// Builds registries from fake backends and counts probe/open calls per backend.
class RegistryTest : public ::testing::Test {
 protected:
  Registry Make(std::vector<FakeBackend> fakes) {
    std::vector<BackendInfo> infos;
    for (FakeBackend& fake : fakes) {
      const std::string name = fake.name;
      infos.push_back(BackendInfo{
          name,
          [this, name, a = fake.availability] {
            ++probes_[name];
            return a;
          },
          [this, name, err = fake.open_error]() -> Result<std::unique_ptr<Hypervisor>> {
            ++opens_[name];
            if (err) return *err;
            return std::unique_ptr<Hypervisor>(std::make_unique<FakeHypervisor>(name));
          }});
    }
    return Registry(std::move(infos), [this](const char* var) -> std::optional<std::string> {
      env_reads_.push_back(var);
      auto it = env_.find(var);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    });
  }

  static Availability Up() { return {}; }
  static Availability Down(Unavailability why, std::string reason) { return {why, std::move(reason)}; }

  // Three backends; only "mshv" is available unless a test builds its own.
  Registry Standard() {
    return Make({{"kvm", Down(Unavailability::kDeviceMissing, "/dev/kvm: No such file or directory"), {}},
                 {"mshv", Up(), {}},
                 {"whp", Down(Unavailability::kNotBuilt, "built without WHP"), {}}});
  }

  static std::string NameOf(const Result<std::unique_ptr<Hypervisor>>& opened) {
    if (!opened) return "<error: " + opened.error().Message() + ">";
    return std::string((*opened)->name());
  }

  std::map<std::string, std::string> env_;
  std::vector<std::string> env_reads_;
  std::map<std::string, int> probes_, opens_;
};

TEST_F(RegistryTest, AutoPicksTheFirstAvailableBackendInOrder) {
  Registry registry = Make({{"kvm", Down(Unavailability::kPermissionDenied, "EACCES"), {}},
                            {"mshv", Up(), {}},
                            {"whp", Up(), {}}});
  auto opened = registry.Open("auto");
  EXPECT_EQ(NameOf(opened), "mshv");
  EXPECT_EQ(opens_["kvm"], 0);
  EXPECT_EQ(opens_["mshv"], 1);
  EXPECT_EQ(opens_["whp"], 0) << "auto must stop at the first backend that opens";

  // Registration order decides, not the name.
  Registry reversed = Make({{"whp", Up(), {}}, {"kvm", Up(), {}}});
  EXPECT_EQ(NameOf(reversed.Open("auto")), "whp");
}

TEST_F(RegistryTest, DefaultAndEmptyNamesMeanAuto) {
  Registry registry = Standard();
  EXPECT_EQ(NameOf(registry.Open()), "mshv");
  EXPECT_EQ(NameOf(registry.Open("")), "mshv");
}

TEST_F(RegistryTest, CreatePartitionOnTheFakeFails) {
  Registry registry = Standard();
  auto opened = registry.Open("mshv");
  ASSERT_TRUE(opened.has_value());
  auto partition = (*opened)->CreatePartition({});
  ASSERT_FALSE(partition.has_value());
  EXPECT_EQ(partition.error().code, ErrorCode::kUnavailable);
}

TEST_F(RegistryTest, NamedOpenOfAnAvailableBackend) {
  Registry registry = Make({{"kvm", Up(), {}}, {"mshv", Up(), {}}});
  EXPECT_EQ(NameOf(registry.Open("mshv")), "mshv");
  EXPECT_EQ(opens_["kvm"], 0);
  EXPECT_EQ(NameOf(registry.Open("kvm")), "kvm");
}

TEST_F(RegistryTest, NamedOpenOfAnUnavailableBackendSaysWhy) {
  struct Case {
    Unavailability why;
    const char* reason;
  };
  for (const Case& c : {Case{Unavailability::kDeviceMissing, "/dev/kvm: No such file or directory"},
                        Case{Unavailability::kPermissionDenied, "/dev/kvm: Permission denied"},
                        Case{Unavailability::kNotBuilt, "VIRT_BUILD_KVM=OFF"},
                        Case{Unavailability::kApiVersion, "KVM_GET_API_VERSION returned 11"},
                        Case{Unavailability::kOther, "something else"}}) {
    Registry registry = Make({{"kvm", Down(c.why, c.reason), {}}, {"mshv", Up(), {}}});
    auto opened = registry.Open("kvm");
    ASSERT_FALSE(opened.has_value()) << ToString(c.why);
    EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
    const std::string message = opened.error().Message();
    EXPECT_THAT(message, HasSubstr("kvm"));
    EXPECT_THAT(message, HasSubstr(ToString(c.why)));
    EXPECT_THAT(message, HasSubstr(c.reason));
    EXPECT_EQ(opens_["kvm"], 0) << "an unavailable backend must not be opened";
    EXPECT_EQ(opens_["mshv"], 0) << "a named open must not fall back to another backend";
  }
}

TEST_F(RegistryTest, UnavailabilityCategoriesHaveDistinctReadableNames) {
  EXPECT_STREQ(ToString(Unavailability::kDeviceMissing), "device missing");
  EXPECT_STREQ(ToString(Unavailability::kPermissionDenied), "permission denied");
  EXPECT_STREQ(ToString(Unavailability::kNotBuilt), "not built");
  EXPECT_THAT(ToString(Unavailability::kApiVersion), HasSubstr("API version"));
  EXPECT_TRUE(Availability{}.available());
  EXPECT_FALSE(Down(Unavailability::kOther, "").available());
}

TEST_F(RegistryTest, UnknownNameIsNotFoundAndListsKnownNames) {
  Registry registry = Standard();
  auto opened = registry.Open("hyperkit");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
  const std::string message = opened.error().Message();
  EXPECT_THAT(message, HasSubstr("hyperkit"));
  EXPECT_THAT(message, HasSubstr("kvm"));
  EXPECT_THAT(message, HasSubstr("mshv"));
  EXPECT_THAT(message, HasSubstr("whp"));
  EXPECT_EQ(opens_.size(), 0u);
}

TEST_F(RegistryTest, AutoWithNothingAvailableListsEveryBackendWithItsReason) {
  Registry registry =
      Make({{"kvm", Down(Unavailability::kPermissionDenied, "/dev/kvm: Permission denied"), {}},
            {"mshv", Down(Unavailability::kDeviceMissing, "/dev/mshv: No such file or directory"), {}},
            {"whp", Down(Unavailability::kNotBuilt, "Windows only"), {}}});
  auto opened = registry.Open("auto");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  const std::string message = opened.error().Message();
  for (const char* part : {"kvm", "permission denied", "/dev/kvm: Permission denied", "mshv",
                           "device missing", "/dev/mshv: No such file or directory", "whp",
                           "not built", "Windows only"}) {
    EXPECT_THAT(message, HasSubstr(part));
  }
  // Each reason is attached to its own backend, in order.
  EXPECT_LT(message.find("kvm"), message.find("/dev/kvm: Permission denied"));
  EXPECT_LT(message.find("/dev/kvm: Permission denied"), message.find("mshv"));
  EXPECT_LT(message.find("mshv"), message.find("/dev/mshv: No such"));
  EXPECT_LT(message.find("/dev/mshv: No such"), message.find("whp"));
  EXPECT_LT(message.find("whp"), message.find("Windows only"));
  EXPECT_EQ(opens_.size(), 0u);
}

TEST_F(RegistryTest, AutoWithNoBackendsRegisteredIsUnavailable) {
  Registry registry = Make({});
  auto opened = registry.Open("auto");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
}

TEST_F(RegistryTest, EnvironmentOverridesAuto) {
  Registry registry = Make({{"kvm", Up(), {}}, {"mshv", Up(), {}}});
  ASSERT_EQ(NameOf(registry.Open("auto")), "kvm");

  env_[Registry::kEnvVar] = "mshv";
  EXPECT_EQ(NameOf(registry.Open("auto")), "mshv");
  EXPECT_EQ(NameOf(registry.Open()), "mshv");
  EXPECT_THAT(env_reads_, ::testing::Contains(std::string("VIRT_BACKEND")));
}

TEST_F(RegistryTest, ExplicitNameBeatsTheEnvironment) {
  Registry registry = Make({{"kvm", Up(), {}}, {"mshv", Up(), {}}});
  env_[Registry::kEnvVar] = "mshv";
  EXPECT_EQ(NameOf(registry.Open("kvm")), "kvm");

  // Even when the environment names something bogus.
  env_[Registry::kEnvVar] = "bogus";
  EXPECT_EQ(NameOf(registry.Open("kvm")), "kvm");
}

TEST_F(RegistryTest, EnvironmentSetToAutoOrEmptyKeepsAuto) {
  Registry registry = Make({{"kvm", Down(Unavailability::kDeviceMissing, "gone"), {}},
                            {"mshv", Up(), {}}});
  env_[Registry::kEnvVar] = "auto";
  EXPECT_EQ(NameOf(registry.Open("auto")), "mshv");
  env_[Registry::kEnvVar] = "";
  EXPECT_EQ(NameOf(registry.Open("auto")), "mshv");
}

TEST_F(RegistryTest, EnvironmentNamingAnUnknownBackendIsNotFound) {
  Registry registry = Standard();
  env_[Registry::kEnvVar] = "qemu-tcg";
  auto opened = registry.Open("auto");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(opened.error().Message(), HasSubstr("qemu-tcg"));
  EXPECT_EQ(opens_.size(), 0u) << "must not silently fall back to auto";
}

TEST_F(RegistryTest, EnvironmentNamingAnUnavailableBackendIsUnavailable) {
  Registry registry = Standard();
  env_[Registry::kEnvVar] = "kvm";
  auto opened = registry.Open();
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(opened.error().Message(), HasSubstr("/dev/kvm: No such file or directory"));
  EXPECT_EQ(opens_["mshv"], 0);
}

TEST_F(RegistryTest, AutoFallsThroughWhenAnAvailableBackendFailsToOpen) {
  Registry registry =
      Make({{"kvm", Up(), Error::Errno("KVM_CREATE_VM", ENOMEM)},
            {"mshv", Down(Unavailability::kDeviceMissing, "/dev/mshv missing"), {}},
            {"whp", Up(), {}}});
  EXPECT_EQ(NameOf(registry.Open("auto")), "whp");
  EXPECT_EQ(opens_["kvm"], 1);
  EXPECT_EQ(opens_["whp"], 1);
}

TEST_F(RegistryTest, AutoReportsTheOpenFailureWhenNothingOpens) {
  Registry registry =
      Make({{"kvm", Up(), Error::Make(ErrorCode::kNative, "KVM_CREATE_VM", "vm limit reached")},
            {"mshv", Down(Unavailability::kApiVersion, "MSHV API 2 unsupported"), {}}});
  auto opened = registry.Open("auto");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  const std::string message = opened.error().Message();
  EXPECT_THAT(message, HasSubstr("kvm"));
  EXPECT_THAT(message, HasSubstr("KVM_CREATE_VM"));
  EXPECT_THAT(message, HasSubstr("vm limit reached"));
  EXPECT_THAT(message, HasSubstr("mshv"));
  EXPECT_THAT(message, HasSubstr("MSHV API 2 unsupported"));
  EXPECT_EQ(opens_["kvm"], 1);
  EXPECT_EQ(opens_["mshv"], 0);
}

TEST_F(RegistryTest, NamedOpenReturnsTheOpenFailureItself) {
  const Error failure = Error::Errno("KVM_CREATE_VM", EMFILE);
  Registry registry = Make({{"kvm", Up(), failure}, {"mshv", Up(), {}}});
  auto opened = registry.Open("kvm");
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code, failure.code);
  EXPECT_EQ(opened.error().native_code, failure.native_code);
  EXPECT_STREQ(opened.error().operation, failure.operation);
  EXPECT_EQ(opens_["mshv"], 0);
}

TEST_F(RegistryTest, ProbeReturnsEveryBackendInOrderWithItsAvailability) {
  Registry registry = Standard();
  const std::vector<BackendStatus> statuses = registry.Probe();
  ASSERT_EQ(statuses.size(), 3u);
  EXPECT_EQ(statuses[0].name, "kvm");
  EXPECT_EQ(statuses[0].availability.why, Unavailability::kDeviceMissing);
  EXPECT_EQ(statuses[0].availability.reason, "/dev/kvm: No such file or directory");
  EXPECT_EQ(statuses[1].name, "mshv");
  EXPECT_TRUE(statuses[1].availability.available());
  EXPECT_EQ(statuses[2].name, "whp");
  EXPECT_EQ(statuses[2].availability.why, Unavailability::kNotBuilt);
  EXPECT_EQ(statuses[2].availability.reason, "built without WHP");
  EXPECT_EQ(probes_["kvm"], 1);
  EXPECT_EQ(probes_["whp"], 1);
  EXPECT_EQ(opens_.size(), 0u) << "Probe must not open anything";
}

}  // namespace
}  // namespace virt
