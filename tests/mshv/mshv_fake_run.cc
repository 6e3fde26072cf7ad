// FakeMshv's MSHV_RUN_VP: queued guest stores (doorbells rung inside the run) and intercept
// messages, and the AP start-up the hypervisor's LAPIC performs (a VP in StartupSuspend sleeps
// interruptibly until StartupIpi or a signal).
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mshv_fake.h"

namespace virt::mshv::test {
namespace {

// The intercept a store no doorbell takes: HVMSG_UNMAPPED_GPA for `mov [rax], rcx` of the
// store's width, with RCX holding the value, at the VP's RIP.
mshv_run_vp StoreIntercept(FakeMshv::Vp& vp, const GuestWrite& w) {
  vp.registers[HV_X64_REGISTER_RCX] = {w.value, 0};
  std::vector<uint8_t> insn;
  switch (w.len) {
    case 1: insn = {0x88, 0x08}; break;
    case 2: insn = {0x66, 0x89, 0x08}; break;
    case 8: insn = {0x48, 0x89, 0x08}; break;
    default: insn = {0x89, 0x08}; break;
  }
  InterceptHeader h;
  h.vp_index = vp.index;
  h.access_type = 1;
  if (auto rip = vp.registers.find(HV_X64_REGISTER_RIP); rip != vp.registers.end()) {
    h.rip = rip->second.low;
  }
  return MemoryMessage(HVMSG_UNMAPPED_GPA, h, w.gpa, insn);
}

}  // namespace

bool FakeMshv::InStartupSuspend(Vp& vp) {
  auto it = vp.registers.find(HV_REGISTER_INTERNAL_ACTIVITY_STATE);
  return it != vp.registers.end() && (it->second.low & HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND);
}

void FakeMshv::CloseWakeFd(Vp& vp) {
  if (vp.wake_fd >= 0) ::close(vp.wake_fd);
  vp.wake_fd = -1;
}

Status FakeMshv::RunVp(int vp_fd, mshv_run_vp* run) {
  std::unique_lock lock(mu_);
  int err = 0;
  if (ShouldFail("RunVp", &err)) return Error::Errno("MSHV_RUN_VP", err);
  auto it = vps_.find(vp_fd);
  if (it == vps_.end()) return Error::Errno("MSHV_RUN_VP", EBADF);
  // As in the kernel's run loop (wait_event_interruptible): the VP does not run until the
  // hypervisor starts it; a pending signal ends the wait with EINTR.
  while (InStartupSuspend(it->second)) {
    Vp& vp = it->second;
    if (vp.wake_fd < 0) vp.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const int wake = vp.wake_fd;
    ++vp.sleeping_runs;
    slept_.notify_all();
    lock.unlock();
    pollfd p{wake, POLLIN, 0};
    const int rc = ::poll(&p, 1, -1);
    const int saved = errno;
    lock.lock();
    it = vps_.find(vp_fd);
    if (it == vps_.end()) return Error::Errno("MSHV_RUN_VP", EBADF);
    if (rc < 0) return Error::Errno("MSHV_RUN_VP", saved);
    uint64_t drained;
    (void)!::read(wake, &drained, sizeof drained);
  }
  int partition_fd = -1;
  Partition* partition = PartitionOf(vp_fd, &partition_fd);
  while (!it->second.guest_writes.empty()) {
    const GuestWrite w = it->second.guest_writes.front();
    it->second.guest_writes.pop_front();
    if (partition != nullptr && RingDoorbell(*partition, w)) continue;  // no exit
    *run = StoreIntercept(it->second, w);
    return Ok();
  }
  if (it->second.messages.empty()) return Error::Errno("MSHV_RUN_VP", ENODATA);
  *run = it->second.messages.front();
  it->second.messages.pop_front();
  return Ok();
}

bool FakeMshv::StartupIpi(uint32_t vp_index, uint8_t vector) {
  std::lock_guard lock(mu_);
  Vp& target = vp(vp_index);
  if (!InStartupSuspend(target)) return false;
  hv_x64_segment_register cs{};
  cs.base = uint64_t{vector} << 12;
  cs.limit = 0xFFFF;
  cs.selector = static_cast<uint16_t>(vector << 8);
  cs.attributes = 0x9B;  // present, DPL 0, code, execute/read, accessed
  std::memcpy(&target.registers[HV_X64_REGISTER_CS], &cs, sizeof cs);
  target.registers[HV_X64_REGISTER_RIP] = {0, 0};
  target.registers[HV_REGISTER_INTERNAL_ACTIVITY_STATE] = {0, 0};
  if (target.wake_fd >= 0) {
    const uint64_t one = 1;
    (void)!::write(target.wake_fd, &one, sizeof one);
  }
  return true;
}

void FakeMshv::WaitForSleepingRun(uint32_t vp_index, int count) {
  std::unique_lock lock(mu_);
  slept_.wait(lock, [&] { return vp(vp_index).sleeping_runs >= count; });
}

}  // namespace virt::mshv::test
