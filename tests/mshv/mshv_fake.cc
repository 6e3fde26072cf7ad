// FakeMshv: a /dev/mshv model that checks the ABI and the irqfd/routing ordering on every call.
#include "mshv_fake.h"

#include <cerrno>
#include <cstring>

namespace virt::mshv::test {
namespace {

using ::testing::_;
using ::testing::Invoke;


}  // namespace

bool FakeMshv::ShouldFail(const char* method, int* err, uint16_t* hv_status) {
  const int n = calls_[method]++;
  if (fail_method_ != method || n != fail_at_) return false;
  *err = fail_errno_;
  if (hv_status != nullptr) *hv_status = fail_status_;
  fail_method_.clear();
  return true;
}

void FakeMshv::FailNext(const std::string& method, int nth, int err, uint16_t hv_status) {
  std::lock_guard lock(mu_);
  fail_method_ = method;
  fail_at_ = calls_[method] + nth;
  fail_errno_ = err;
  fail_status_ = hv_status;
}

void FakeMshv::ClearFailure() {
  std::lock_guard lock(mu_);
  fail_method_.clear();
}

int FakeMshv::calls(const std::string& method) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

FakeMshv::FakeMshv() : host_cpuid_(DefaultHostCpuid()) {}

FakeMshv::~FakeMshv() {
  for (auto& [fd, vp] : vps_) CloseWakeFd(vp);
  for (auto& [fd, p] : partitions_) ReleaseIoeventfds(p);
}

FakeMshv::Partition* FakeMshv::PartitionOf(int fd, int* partition_fd) {
  if (auto it = partitions_.find(fd); it != partitions_.end()) {
    *partition_fd = fd;
    return &it->second;
  }
  if (auto vp = vps_.find(fd); vp != vps_.end()) {
    if (auto it = partitions_.find(vp->second.partition_fd); it != partitions_.end()) {
      *partition_fd = it->first;
      return &it->second;
    }
  }
  return nullptr;
}

FakeMshv::Vp* FakeMshv::VpOf(int partition_fd, uint32_t vp_index) {
  for (auto& [fd, vp] : vps_) {
    if (vp.partition_fd == partition_fd && vp.index == vp_index) return &vp;
  }
  return nullptr;
}

FakeMshv::Partition& FakeMshv::only_partition() {
  EXPECT_EQ(partitions_.size(), 1u);
  return partitions_.begin()->second;
}

FakeMshv::Vp& FakeMshv::vp(uint32_t index) {
  for (auto& [fd, vp] : vps_) {
    if (vp.index == index) return vp;
  }
  ADD_FAILURE() << "no vp " << index;
  static Vp none;
  return none;
}

Result<int> FakeMshv::Open(const char* path) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("Open", &err)) return Error::Errno("open", err, path);
  if (std::string(path) != "/dev/mshv") Violation(std::string("open of ") + path);
  open_fds_.insert(kMshvFd);
  return kMshvFd;
}

Status FakeMshv::Close(int fd) {
  std::lock_guard lock(mu_);
  if (open_fds_.erase(fd) == 0) Violation("close of fd " + Num(fd) + " that is not open");
  // mshv_partition_release: the kernel drops the partition's ioeventfds, irqfds and mappings.
  if (auto p = partitions_.find(fd); p != partitions_.end()) {
    ReleaseIoeventfds(p->second);
    partitions_.erase(p);
  }
  if (auto vp = vps_.find(fd); vp != vps_.end()) {
    CloseWakeFd(vp->second);
    vps_.erase(vp);
  }
  log_.push_back("close " + Num(fd));
  int err = 0;
  if (ShouldFail("Close", &err)) return Error::Errno("close", err);  // the fd is gone anyway
  return Ok();
}

Result<int> FakeMshv::CreatePartition(int mshv_fd, const mshv_create_partition& args) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("CreatePartition", &err)) return Error::Errno("MSHV_CREATE_PARTITION", err);
  if (mshv_fd != kMshvFd || !open_fds_.count(mshv_fd)) Violation("MSHV_CREATE_PARTITION fd");
  if (args.pt_flags & ~uint64_t{0xF}) Violation("unknown pt_flags " + Num(args.pt_flags));
  if (args.pt_isolation != MSHV_PT_ISOLATION_NONE) Violation("pt_isolation");
  const int fd = next_fd_++;
  open_fds_.insert(fd);
  partitions_[fd].pt_flags = args.pt_flags;
  return fd;
}

Status FakeMshv::InitializePartition(int partition_fd) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("InitializePartition", &err)) return Error::Errno("MSHV_INITIALIZE_PARTITION", err);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Error::Errno("MSHV_INITIALIZE_PARTITION", EBADF);
  if (it->second.initialized) Violation("partition initialized twice");
  it->second.initialized = true;
  return Ok();
}

Result<int> FakeMshv::CreateVp(int partition_fd, const mshv_create_vp& args) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("CreateVp", &err)) return Error::Errno("MSHV_CREATE_VP", err);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Error::Errno("MSHV_CREATE_VP", EBADF);
  if (!it->second.initialized) Violation("MSHV_CREATE_VP before MSHV_INITIALIZE_PARTITION");
  for (auto& [fd, vp] : vps_) {
    if (vp.partition_fd == partition_fd && vp.index == args.vp_index) {
      return Error::Errno("MSHV_CREATE_VP", EEXIST);
    }
  }
  const int fd = next_fd_++;
  open_fds_.insert(fd);
  vps_[fd].partition_fd = partition_fd;
  vps_[fd].index = args.vp_index;
  // The hypervisor creates the APs of a LAPIC partition in StartupSuspend (QEMU's MSHV
  // accelerator keeps the register's reset value for this reason); VP 0 is the runnable BSP.
  if ((it->second.pt_flags & (uint64_t{1} << MSHV_PT_BIT_LAPIC)) && args.vp_index != 0) {
    vps_[fd].registers[HV_REGISTER_INTERNAL_ACTIVITY_STATE] = {HV_INTERNAL_ACTIVITY_STARTUP_SUSPEND, 0};
  }
  return fd;
}

Status FakeMshv::SetGuestMemory(int partition_fd, const mshv_user_mem_region& r) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("SetGuestMemory", &err)) return Error::Errno("MSHV_SET_GUEST_MEMORY", err);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Error::Errno("MSHV_SET_GUEST_MEMORY", EBADF);
  for (uint8_t b : r.rsvd) {
    if (b != 0) Violation("mshv_user_mem_region.rsvd not zero");
  }
  if (r.flags & ~uint8_t{0x7}) Violation("unknown memory flags");
  auto& regions = it->second.regions;
  if (r.flags & (1u << MSHV_SET_MEM_BIT_UNMAP)) {
    auto found = regions.find(r.guest_pfn);
    if (found == regions.end() || found->second.size != r.size ||
        found->second.userspace_addr != r.userspace_addr) {
      Violation("unmap does not match a mapping");
      return Error::Errno("MSHV_SET_GUEST_MEMORY", EINVAL);
    }
    regions.erase(found);
    return Ok();
  }
  if (r.size == 0 || r.size % 4096 || r.userspace_addr % 4096) {
    Violation("unaligned or empty mapping");
    return Error::Errno("MSHV_SET_GUEST_MEMORY", EINVAL);
  }
  for (auto& [pfn, m] : regions) {
    if (r.guest_pfn < pfn + m.size / 4096 && pfn < r.guest_pfn + r.size / 4096) {
      Violation("overlapping mapping");
      return Error::Errno("MSHV_SET_GUEST_MEMORY", EEXIST);
    }
  }
  regions[r.guest_pfn] = r;
  return Ok();
}

Status FakeMshv::Irqfd(int partition_fd, const mshv_user_irqfd& a) {
  std::lock_guard lock(mu_);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Error::Errno("MSHV_IRQFD", EBADF);
  Partition& p = it->second;
  int err = 0;
  if (ShouldFail("Irqfd", &err)) {
    if (a.flags & (1u << MSHV_IRQFD_BIT_DEASSIGN)) p.orphaned.insert(a.gsi);
    return Error::Errno("MSHV_IRQFD", err);
  }
  if (a.flags & ~uint32_t{0x3}) Violation("unknown irqfd flags " + Num(a.flags));
  if (a.flags & (1u << MSHV_IRQFD_BIT_DEASSIGN)) {
    auto found = p.irqfds.find(a.gsi);
    if (found == p.irqfds.end() || found->second.fd != a.fd) {
      Violation("deassign of an irqfd that is not assigned (gsi " + Num(a.gsi) + ")");
    } else {
      p.irqfds.erase(found);
    }
    log_.push_back("deassign " + Num(a.gsi));
    return Ok();
  }
  auto entry = p.table.find(a.gsi);
  if (entry == p.table.end()) Violation("irqfd assigned before its entry was pushed: " + Num(a.gsi));
  if (p.irqfds.count(a.gsi)) return Error::Errno("MSHV_IRQFD", EBUSY);
  const bool resample = a.flags & (1u << MSHV_IRQFD_BIT_RESAMPLE);
  if (resample && a.resamplefd < 0) Violation("RESAMPLE without a resample fd");
  if (resample && entry != p.table.end() && !(entry->second.data & (1u << 15))) {
    Violation("RESAMPLE on an edge-triggered entry");
  }
  p.irqfds[a.gsi] = a;
  log_.push_back(std::string(resample ? "assign-resample " : "assign ") + Num(a.gsi));
  return Ok();
}

Status FakeMshv::SetMsiRouting(int partition_fd, const mshv_user_irq_table& table) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("SetMsiRouting", &err)) return Error::Errno("MSHV_SET_MSI_ROUTING", err);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Error::Errno("MSHV_SET_MSI_ROUTING", EBADF);
  Partition& p = it->second;
  if (table.rsvd != 0) Violation("mshv_user_irq_table.rsvd not zero");
  std::map<uint32_t, mshv_user_irq_entry> next;
  std::string line = "push";
  for (const mshv_user_irq_entry& e : TableEntries(table)) {
    if (!next.emplace(e.gsi, e).second) Violation("GSI " + Num(e.gsi) + " twice in one table");
    line += " " + Num(e.gsi);
  }
  for (auto irqfd = p.irqfds.begin(); irqfd != p.irqfds.end();) {
    const uint32_t gsi = irqfd->first;
    if (next.count(gsi)) {
      ++irqfd;
      continue;
    }
    if (!p.orphaned.count(gsi)) Violation("entry of armed GSI " + Num(gsi) + " removed");
    p.orphaned.erase(gsi);
    irqfd = p.irqfds.erase(irqfd);
  }
  p.table = next;
  p.pushes.push_back(std::move(next));
  log_.push_back(line);
  return Ok();
}

void MockMshvIoctl::DelegateTo(FakeMshv& f) {
  ON_CALL(*this, Open(_)).WillByDefault(Invoke(&f, &FakeMshv::Open));
  ON_CALL(*this, Close(_)).WillByDefault(Invoke(&f, &FakeMshv::Close));
  ON_CALL(*this, CreatePartition(_, _)).WillByDefault(Invoke(&f, &FakeMshv::CreatePartition));
  ON_CALL(*this, InitializePartition(_))
      .WillByDefault(Invoke(&f, &FakeMshv::InitializePartition));
  ON_CALL(*this, CreateVp(_, _)).WillByDefault(Invoke(&f, &FakeMshv::CreateVp));
  ON_CALL(*this, SetGuestMemory(_, _)).WillByDefault(Invoke(&f, &FakeMshv::SetGuestMemory));
  ON_CALL(*this, Irqfd(_, _)).WillByDefault(Invoke(&f, &FakeMshv::Irqfd));
  ON_CALL(*this, Ioeventfd(_, _)).WillByDefault(Invoke(&f, &FakeMshv::Ioeventfd));
  ON_CALL(*this, SetMsiRouting(_, _)).WillByDefault(Invoke(&f, &FakeMshv::SetMsiRouting));
  ON_CALL(*this, GetGpapAccessBitmap(_, _))
      .WillByDefault(Invoke(&f, &FakeMshv::GetGpapAccessBitmap));
  ON_CALL(*this, RootHvcall(_, _)).WillByDefault(Invoke(&f, &FakeMshv::RootHvcall));
  ON_CALL(*this, RunVp(_, _)).WillByDefault(Invoke(&f, &FakeMshv::RunVp));
  ON_CALL(*this, GetVpState(_, _)).WillByDefault(Invoke(&f, &FakeMshv::GetVpState));
  ON_CALL(*this, SetVpState(_, _)).WillByDefault(Invoke(&f, &FakeMshv::SetVpState));
}

}  // namespace virt::mshv::test
