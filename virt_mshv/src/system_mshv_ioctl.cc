// SystemMshvIoctl: the only file of the MSHV backend that makes system calls.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "virt/mshv/mshv_ioctl.h"

namespace virt::mshv {

// Our constexpr encoding agrees with the kernel's own macros.
static_assert(MSHV_CREATE_PARTITION == _IOW(MSHV_IOCTL, 0x00, mshv_create_partition));
static_assert(MSHV_INITIALIZE_PARTITION == _IO(MSHV_IOCTL, 0x00));
static_assert(MSHV_CREATE_VP == _IOW(MSHV_IOCTL, 0x01, mshv_create_vp));
static_assert(MSHV_SET_GUEST_MEMORY == _IOW(MSHV_IOCTL, 0x02, mshv_user_mem_region));
static_assert(MSHV_IRQFD == _IOW(MSHV_IOCTL, 0x03, mshv_user_irqfd));
static_assert(MSHV_IOEVENTFD == _IOW(MSHV_IOCTL, 0x04, mshv_user_ioeventfd));
static_assert(MSHV_SET_MSI_ROUTING == _IOW(MSHV_IOCTL, 0x05, mshv_user_irq_table));
static_assert(MSHV_GET_GPAP_ACCESS_BITMAP == _IOWR(MSHV_IOCTL, 0x06, mshv_gpap_access_bitmap));
static_assert(MSHV_ROOT_HVCALL == _IOWR(MSHV_IOCTL, 0x07, mshv_root_hvcall));
static_assert(MSHV_RUN_VP == _IOR(MSHV_IOCTL, 0x00, mshv_run_vp));
static_assert(MSHV_GET_VP_STATE == _IOWR(MSHV_IOCTL, 0x01, mshv_get_set_vp_state));
static_assert(MSHV_SET_VP_STATE == _IOWR(MSHV_IOCTL, 0x02, mshv_get_set_vp_state));

namespace {

class SystemMshvIoctl final : public MshvIoctl {
 public:
  explicit SystemMshvIoctl(MshvSyscalls sys) : sys_(sys) {}

  Result<int> Open(const char* path) override {
    const int fd = sys_.open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return Error::Errno("open", errno, path);
    return fd;
  }
  Status Close(int fd) override {
    if (sys_.close(fd) != 0 && errno != EINTR) return Error::Errno("close", errno);
    return Ok();
  }
  Result<int> CreatePartition(int mshv_fd, const mshv_create_partition& args) override {
    return Call("MSHV_CREATE_PARTITION", mshv_fd, MSHV_CREATE_PARTITION, &args);
  }
  Status InitializePartition(int partition_fd) override {
    return Check(Call("MSHV_INITIALIZE_PARTITION", partition_fd, MSHV_INITIALIZE_PARTITION,
                      nullptr));
  }
  Result<int> CreateVp(int partition_fd, const mshv_create_vp& args) override {
    return Call("MSHV_CREATE_VP", partition_fd, MSHV_CREATE_VP, &args);
  }
  Status SetGuestMemory(int partition_fd, const mshv_user_mem_region& region) override {
    return Check(Call("MSHV_SET_GUEST_MEMORY", partition_fd, MSHV_SET_GUEST_MEMORY, &region));
  }
  Status Irqfd(int partition_fd, const mshv_user_irqfd& args) override {
    return Check(Call("MSHV_IRQFD", partition_fd, MSHV_IRQFD, &args));
  }
  Status Ioeventfd(int partition_fd, const mshv_user_ioeventfd& args) override {
    return Check(Call("MSHV_IOEVENTFD", partition_fd, MSHV_IOEVENTFD, &args));
  }
  Status SetMsiRouting(int partition_fd, const mshv_user_irq_table& table) override {
    return Check(Call("MSHV_SET_MSI_ROUTING", partition_fd, MSHV_SET_MSI_ROUTING, &table));
  }
  Status GetGpapAccessBitmap(int partition_fd, mshv_gpap_access_bitmap* args) override {
    return Check(Call("MSHV_GET_GPAP_ACCESS_BITMAP", partition_fd, MSHV_GET_GPAP_ACCESS_BITMAP,
                      args));
  }
  Status RootHvcall(int fd, mshv_root_hvcall* call) override {
    return Check(Call("MSHV_ROOT_HVCALL", fd, MSHV_ROOT_HVCALL, call));
  }
  Status RunVp(int vp_fd, mshv_run_vp* run) override {
    return Check(Call("MSHV_RUN_VP", vp_fd, MSHV_RUN_VP, run, /*retry_eintr=*/false));
  }
  Status GetVpState(int vp_fd, mshv_get_set_vp_state* state) override {
    return Check(Call("MSHV_GET_VP_STATE", vp_fd, MSHV_GET_VP_STATE, state));
  }
  Status SetVpState(int vp_fd, const mshv_get_set_vp_state& state) override {
    return Check(Call("MSHV_SET_VP_STATE", vp_fd, MSHV_SET_VP_STATE, &state));
  }

 private:
  // ioctl(2) with EINTR retried, except for MSHV_RUN_VP where EINTR is the cancellation signal.
  // The kernel only reads `arg` for _IOW requests; the const_cast hands it through ioctl(2)'s
  // untyped pointer without the callee writing to it.
  Result<int> Call(const char* op, int fd, unsigned long request, const void* arg,
                   bool retry_eintr = true) {
    for (;;) {
      const int rc = sys_.ioctl(fd, request, const_cast<void*>(arg));
      if (rc >= 0) return rc;
      if (errno != EINTR || !retry_eintr) return Error::Errno(op, errno);
    }
  }
  static Status Check(Result<int> r) {
    if (!r) return std::unexpected(std::move(r.error()));
    return Ok();
  }

  MshvSyscalls sys_;
};

int SysIoctl(int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }
int SysOpen(const char* path, int flags) { return ::open(path, flags); }
int SysClose(int fd) { return ::close(fd); }

}  // namespace

MshvSyscalls SystemMshvSyscalls() { return MshvSyscalls{SysIoctl, SysOpen, SysClose}; }

std::shared_ptr<MshvIoctl> MakeSystemMshvIoctl(MshvSyscalls syscalls) {
  return std::make_shared<SystemMshvIoctl>(syscalls);
}

}  // namespace virt::mshv
