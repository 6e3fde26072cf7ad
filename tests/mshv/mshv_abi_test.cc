// The ABI header against the reference, and the real MshvIoctl layer's exact ioctl numbers and
// argument pointers (through injected syscalls, since this machine has no /dev/mshv).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "virt/mshv/mshv_abi.h"
#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {
namespace {

using ::testing::ElementsAre;

// The reference's numbers, once more, where a test reader sees them.
static_assert(MSHV_CREATE_PARTITION == 0x4010b800);
static_assert(MSHV_INITIALIZE_PARTITION == 0x0000b800);
static_assert(MSHV_CREATE_VP == 0x4004b801);
static_assert(MSHV_SET_GUEST_MEMORY == 0x4020b802);
static_assert(MSHV_IRQFD == 0x4010b803);
static_assert(MSHV_IOEVENTFD == 0x4020b804);
static_assert(MSHV_SET_MSI_ROUTING == 0x4008b805);
static_assert(MSHV_GET_GPAP_ACCESS_BITMAP == 0xc020b806);
static_assert(MSHV_ROOT_HVCALL == 0xc020b807);
static_assert(MSHV_RUN_VP == 0x8100b800);
static_assert(MSHV_GET_VP_STATE == 0xc010b801);
static_assert(MSHV_SET_VP_STATE == 0xc010b802);
static_assert(HVCALL_GET_VP_REGISTERS == 0x0050 && HVCALL_SET_VP_REGISTERS == 0x0051 &&
              HVCALL_ASSERT_VIRTUAL_INTERRUPT == 0x0094);
static_assert(HV_X64_REGISTER_R15 == 0x0002000F && HV_X64_REGISTER_RFLAGS == 0x00020011 &&
              HV_X64_REGISTER_TR == 0x00060007 && HV_X64_REGISTER_GDTR == 0x00070001 &&
              HV_X64_REGISTER_APIC_BASE == 0x00080003);
static_assert(HVMSG_X64_IO_PORT_INTERCEPT == 0x80010000 && HVMSG_X64_HALT == 0x80010007 &&
              HVMSG_UNMAPPED_GPA == 0x80000000 && HVMSG_GPA_INTERCEPT == 0x80000001);

// The upstream numbers of the CPUID and MP-state additions (hvgdk_mini.h / hvhdk.h).
static_assert(HVCALL_INSTALL_INTERCEPT == 0x004d && HVCALL_GET_VP_CPUID_VALUES == 0x00f4);
static_assert(HV_INTERCEPT_TYPE_X64_CPUID == 2 && HV_INTERCEPT_TYPE_X64_APIC_INIT_SIPI == 9 &&
              HV_INTERCEPT_ACCESS_MASK_EXECUTE == 4);
static_assert(HVMSG_X64_CPUID_INTERCEPT == 0x80010002 && HVMSG_X64_SIPI_INTERCEPT == 0x80010009);
static_assert(HV_REGISTER_INTERNAL_ACTIVITY_STATE == 4 && HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND == 1 &&
              HV_INTERNAL_ACTIVITY_HALT_SUSPEND == 2 && HV_INTERNAL_ACTIVITY_IDLE_SUSPEND == 4);
static_assert(HV_STATUS_INSUFFICIENT_MEMORY == 0x0B && HV_STATUS_INVALID_VP_INDEX == 0x0E);

// What the injected ioctl(2) saw.
struct Seen {
  int fd;
  unsigned long request;
  void* arg;
};
std::vector<Seen> g_seen;
int g_result = 0;
int g_errno = 0;
int g_eintr_left = 0;

int FakeIoctl(int fd, unsigned long request, void* arg) {
  g_seen.push_back({fd, request, arg});
  if (g_eintr_left > 0) {
    --g_eintr_left;
    errno = EINTR;
    return -1;
  }
  if (g_errno != 0) {
    errno = g_errno;
    return -1;
  }
  return g_result;
}
int FakeOpen(const char*, int flags) { return flags == (O_RDWR | O_CLOEXEC) ? 7 : -1; }
int FakeClose(int) { return 0; }

class SystemMshvIoctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_seen.clear();
    g_result = 0;
    g_errno = 0;
    g_eintr_left = 0;
  }
  std::shared_ptr<MshvIoctl> ioctl_ = MakeSystemMshvIoctl({FakeIoctl, FakeOpen, FakeClose});
};

TEST_F(SystemMshvIoctlTest, EachMethodIssuesItsIoctlWithTheCallersArgument) {
  mshv_create_partition cp{};
  mshv_create_vp cv{};
  mshv_user_mem_region mem{};
  mshv_user_irqfd irqfd{};
  mshv_user_ioeventfd ioev{};
  mshv_user_irq_table table{};
  mshv_root_hvcall hv{};
  mshv_run_vp run{};
  mshv_get_set_vp_state state{};
  mshv_gpap_access_bitmap bitmap{};
  g_result = 42;
  EXPECT_EQ(*ioctl_->CreatePartition(3, cp), 42);
  EXPECT_TRUE(ioctl_->InitializePartition(4));
  EXPECT_EQ(*ioctl_->CreateVp(4, cv), 42);
  EXPECT_TRUE(ioctl_->SetGuestMemory(4, mem));
  EXPECT_TRUE(ioctl_->Irqfd(4, irqfd));
  EXPECT_TRUE(ioctl_->Ioeventfd(4, ioev));
  EXPECT_TRUE(ioctl_->SetMsiRouting(4, table));
  EXPECT_TRUE(ioctl_->RootHvcall(5, &hv));
  EXPECT_TRUE(ioctl_->RunVp(5, &run));
  EXPECT_TRUE(ioctl_->GetVpState(5, &state));
  EXPECT_TRUE(ioctl_->SetVpState(5, state));
  EXPECT_TRUE(ioctl_->GetGpapAccessBitmap(4, &bitmap));
  ASSERT_EQ(g_seen.size(), 12u);
  const Seen want[] = {
      {3, 0x4010b800, &cp},   {4, 0x0000b800, nullptr}, {4, 0x4004b801, &cv},
      {4, 0x4020b802, &mem},  {4, 0x4010b803, &irqfd},  {4, 0x4020b804, &ioev},
      {4, 0x4008b805, &table}, {5, 0xc020b807, &hv},    {5, 0x8100b800, &run},
      {5, 0xc010b801, &state}, {5, 0xc010b802, &state}, {4, 0xc020b806, &bitmap},
  };
  for (size_t i = 0; i < g_seen.size(); ++i) {
    EXPECT_EQ(g_seen[i].fd, want[i].fd) << i;
    EXPECT_EQ(g_seen[i].request, want[i].request) << std::hex << i;
    EXPECT_EQ(g_seen[i].arg, want[i].arg) << i;
  }
}

TEST_F(SystemMshvIoctlTest, OpenUsesReadWriteCloexec) {
  auto fd = ioctl_->Open("/dev/mshv");
  ASSERT_TRUE(fd.has_value());
  EXPECT_EQ(*fd, 7);
}

TEST_F(SystemMshvIoctlTest, ErrorsNameTheIoctlAndCarryErrno) {
  g_errno = EINVAL;
  mshv_user_irqfd irqfd{};
  Status s = ioctl_->Irqfd(4, irqfd);
  ASSERT_FALSE(s.has_value());
  EXPECT_STREQ(s.error().operation, "MSHV_IRQFD");
  EXPECT_EQ(s.error().native_code, EINVAL);
  EXPECT_EQ(s.error().domain, NativeDomain::kErrno);
}

TEST_F(SystemMshvIoctlTest, EintrIsRetriedExceptForRunVp) {
  g_eintr_left = 2;
  mshv_user_irqfd irqfd{};
  EXPECT_TRUE(ioctl_->Irqfd(4, irqfd));
  EXPECT_EQ(g_seen.size(), 3u);

  g_seen.clear();
  g_eintr_left = 1;
  mshv_run_vp run{};
  Status ran = ioctl_->RunVp(5, &run);
  ASSERT_FALSE(ran.has_value());
  EXPECT_EQ(ran.error().native_code, EINTR);
  EXPECT_EQ(g_seen.size(), 1u);
}

TEST(MshvAbi, IrqTableEntriesStartRightAfterTheEightByteHeader) {
  alignas(8) uint8_t buf[8 + 2 * 16] = {};
  auto* table = reinterpret_cast<mshv_user_irq_table*>(buf);
  table->nr = 2;
  mshv_user_irq_entry e{25, 0xFEE01000, 0, 0x4041};
  std::memcpy(buf + kMshvUserIrqTableEntriesOffset + 16, &e, sizeof e);
  EXPECT_THAT(std::vector<uint8_t>(buf + 24, buf + 40),
              ElementsAre(25, 0, 0, 0, 0x00, 0x10, 0xE0, 0xFE, 0, 0, 0, 0, 0x41, 0x40, 0, 0));
}

}  // namespace
}  // namespace virt::mshv
