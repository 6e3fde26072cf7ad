// MshvIoctl: one thin virtual method per /dev/mshv ioctl the backend uses, and nothing else.
#pragma once

#include <memory>

#include "virt/mshv/mshv_abi.h"
#include "virt/result.h"

namespace virt::mshv {

// The seam between the MSHV backend and the kernel. Each method makes exactly one system call
// (named in its comment), returns its result or {operation, errno}, and has no policy. The
// backend receives it in its constructor; tests pass a GoogleMock. Implementations must be
// thread-safe (the real one is stateless). Nothing throws.
class MshvIoctl {
 public:
  virtual ~MshvIoctl() = default;

  // open(path, O_RDWR | O_CLOEXEC) -> the /dev/mshv fd.
  virtual Result<int> Open(const char* path) = 0;
  // close(fd). Errors are reported but the fd is gone either way.
  virtual Status Close(int fd) = 0;

  // MSHV_CREATE_PARTITION on the /dev/mshv fd -> the partition fd.
  virtual Result<int> CreatePartition(int mshv_fd, const mshv_create_partition& args) = 0;
  // MSHV_INITIALIZE_PARTITION: ends the "early property" phase; needed before vCPUs run.
  virtual Status InitializePartition(int partition_fd) = 0;
  // MSHV_CREATE_VP -> the vp fd.
  virtual Result<int> CreateVp(int partition_fd, const mshv_create_vp& args) = 0;
  // MSHV_SET_GUEST_MEMORY: map, or unmap with MSHV_SET_MEM_BIT_UNMAP (must match a mapping).
  virtual Status SetGuestMemory(int partition_fd, const mshv_user_mem_region& region) = 0;
  // MSHV_IRQFD: assign (flags 0 or RESAMPLE) or deassign (DEASSIGN) an eventfd to a GSI.
  virtual Status Irqfd(int partition_fd, const mshv_user_irqfd& args) = 0;
  // MSHV_IOEVENTFD: assign or deassign an eventfd to a PIO/MMIO address.
  virtual Status Ioeventfd(int partition_fd, const mshv_user_ioeventfd& args) = 0;
  // MSHV_SET_MSI_ROUTING: replaces the partition's whole routing table. `table` is followed in
  // memory by table.nr mshv_user_irq_entry.
  virtual Status SetMsiRouting(int partition_fd, const mshv_user_irq_table& table) = 0;
  // MSHV_GET_GPAP_ACCESS_BITMAP on the partition fd: args->page_count bits from
  // args->gpap_base into args->bitmap_ptr (access_type DIRTY or ACCESSED), then access_op on
  // exactly those pages (CLEAR, SET or NOOP).
  virtual Status GetGpapAccessBitmap(int partition_fd, mshv_gpap_access_bitmap* args) = 0;
  // MSHV_ROOT_HVCALL on a partition or vp fd. call->status receives the hypervisor status, also
  // when the ioctl fails.
  virtual Status RootHvcall(int fd, mshv_root_hvcall* call) = 0;
  // MSHV_RUN_VP: runs until the next intercept message, copied into run->msg_buf. EINTR when a
  // signal is pending (not retried: that is how a run is cancelled).
  virtual Status RunVp(int vp_fd, mshv_run_vp* run) = 0;
  // MSHV_GET_VP_STATE / MSHV_SET_VP_STATE (LAPIC, XSAVE ... pages at state.buf_ptr). The
  // kernel writes the state's size back into buf_sz (through `state` for GET).
  virtual Status GetVpState(int vp_fd, mshv_get_set_vp_state* state) = 0;
  virtual Status SetVpState(int vp_fd, const mshv_get_set_vp_state& state) = 0;
};

// The system calls the real implementation makes; replaceable so tests can check each method
// issues exactly the upstream ioctl number with exactly the caller's argument.
struct MshvSyscalls {
  int (*ioctl)(int fd, unsigned long request, void* arg);
  int (*open)(const char* path, int flags);
  int (*close)(int fd);
};

// ioctl(2), open(2) and close(2).
MshvSyscalls SystemMshvSyscalls();

// The real implementation over `syscalls`: ioctl numbers from mshv_abi.h, EINTR retried except
// for MSHV_RUN_VP, errno reported with the ioctl's name. Stateless and thread-safe.
std::shared_ptr<MshvIoctl> MakeSystemMshvIoctl(MshvSyscalls syscalls = SystemMshvSyscalls());

}  // namespace virt::mshv
