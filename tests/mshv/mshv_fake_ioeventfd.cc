// FakeMshv's MSHV_IOEVENTFD, modelled on upstream drivers/hv/mshv_eventfd.c: the registered
// set, its checks and errno values, and the hypervisor doorbells that guest stores ring.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <string>

#include "mshv_fake.h"

namespace virt::mshv::test {
namespace {

constexpr uint32_t kDatamatch = 1u << MSHV_IOEVENTFD_BIT_DATAMATCH;
constexpr uint32_t kPio = 1u << MSHV_IOEVENTFD_BIT_PIO;
constexpr uint32_t kDeassign = 1u << MSHV_IOEVENTFD_BIT_DEASSIGN;
constexpr uint32_t kFlagsMask = kDatamatch | kPio | kDeassign;  // MSHV_IOEVENTFD_FLAGS_MASK

Error Fail(int err) { return Error::Errno("MSHV_IOEVENTFD", err); }

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// The kernel's eventfd_ctx_fdget: EBADF for an fd that is not open, EINVAL for one that is not
// an eventfd. The identity is fdinfo's eventfd-id (one per eventfd, shared by its dups); on a
// kernel without that line, the fd number.
Result<uint64_t> EventfdIdentity(int fd) {
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
  if (fd < 0 || !info) return Fail(EBADF);
  bool eventfd = false;
  std::optional<uint64_t> id;
  for (std::string line; std::getline(info, line);) {
    if (line.starts_with("eventfd-count:")) eventfd = true;
    if (line.starts_with("eventfd-id:")) id = std::stoull(line.substr(11));
  }
  if (!eventfd) return Fail(EINVAL);
  return id.value_or(static_cast<uint64_t>(fd));
}

bool Wildcard(const mshv_user_ioeventfd& a) { return !(a.flags & kDatamatch); }

std::string Describe(const mshv_user_ioeventfd& a) {
  std::string out = Hex(a.addr) + "/" + std::to_string(a.len);
  if (!Wildcard(a)) out += "=" + Hex(a.datamatch);
  return out;
}

uint64_t Mask(uint32_t len) { return len >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * len)) - 1; }

}  // namespace

// mshv_set_unset_ioeventfd: reserved bits and bytes first, then PIO (not implemented
// upstream, for assign and deassign alike), then the two paths.
Status FakeMshv::Ioeventfd(int partition_fd, const mshv_user_ioeventfd& args) {
  std::lock_guard lock(mu_);
  ioeventfd_calls_.push_back(args);
  int err = 0;
  if (ShouldFail("Ioeventfd", &err)) return Fail(err);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Fail(EBADF);
  const bool rsvd = std::any_of(std::begin(args.rsvd), std::end(args.rsvd),
                                [](uint8_t b) { return b != 0; });
  if ((args.flags & ~kFlagsMask) || rsvd) {
    Violation("MSHV_IOEVENTFD with unknown flags or non-zero rsvd");
    return Fail(EINVAL);
  }
  if (args.flags & kPio) return Fail(EOPNOTSUPP);
  if (args.flags & kDeassign) return DeassignIoeventfd(it->second, args);
  return AssignIoeventfd(it->second, args);
}

// mshv_assign_ioeventfd: a natural length (0 = any: HV_DOORBELL_FLAG_TRIGGER_SIZE_ANY), no
// wrap, an eventfd, then the collision rule (same address and length, and either one without
// DATAMATCH or the same datamatch) answered with EEXIST. Lengths 0 and 4 at one address do not
// collide here (KVM's rule, which KernelDoorbells applies, is stricter).
Status FakeMshv::AssignIoeventfd(Partition& p, const mshv_user_ioeventfd& args) {
  if (args.len != 0 && args.len != 1 && args.len != 2 && args.len != 4 && args.len != 8) {
    return Fail(EINVAL);
  }
  if (args.addr + args.len < args.addr) return Fail(EINVAL);
  auto id = EventfdIdentity(args.fd);
  if (!id) return id.error();
  Partition::Ioeventfd entry{args, -1, *id};
  if (Wildcard(args)) entry.args.datamatch = 0;  // the kernel keeps 0 for a wildcard
  for (const Partition::Ioeventfd& e : p.ioeventfds) {
    if (e.args.addr == args.addr && e.args.len == args.len &&
        (Wildcard(e.args) || Wildcard(args) || e.args.datamatch == args.datamatch)) {
      return Fail(EEXIST);
    }
  }
  entry.held_fd = ::fcntl(args.fd, F_DUPFD_CLOEXEC, 0);
  if (entry.held_fd < 0) return Fail(errno);
  p.ioeventfds.push_back(entry);
  log_.push_back("ioeventfd assign " + Describe(args));
  return Ok();
}

// mshv_deassign_ioeventfd: the registration with this eventfd, address, length, DATAMATCH and
// (with it) datamatch; ENOENT when there is none (which this backend never causes).
Status FakeMshv::DeassignIoeventfd(Partition& p, const mshv_user_ioeventfd& args) {
  auto id = EventfdIdentity(args.fd);
  if (!id) return id.error();
  auto it = std::find_if(p.ioeventfds.begin(), p.ioeventfds.end(),
                         [&](const Partition::Ioeventfd& e) {
                           return e.eventfd_id == *id && e.args.addr == args.addr &&
                                  e.args.len == args.len && Wildcard(e.args) == Wildcard(args) &&
                                  (Wildcard(args) || e.args.datamatch == args.datamatch);
                         });
  if (it == p.ioeventfds.end()) {
    Violation("deassign of an ioeventfd that is not assigned: " + Describe(args));
    return Fail(ENOENT);
  }
  ::close(it->held_fd);
  p.ioeventfds.erase(it);
  log_.push_back("ioeventfd deassign " + Describe(args));
  return Ok();
}

void FakeMshv::ReleaseIoeventfds(Partition& p) {
  for (const Partition::Ioeventfd& e : p.ioeventfds) ::close(e.held_fd);
  p.ioeventfds.clear();
}

// The hypervisor's doorbell port: exact address, the trigger size (any for len 0), the value
// unless HV_DOORBELL_FLAG_TRIGGER_ANY_VALUE; the kernel's callback then signals the eventfd.
bool FakeMshv::RingDoorbell(Partition& p, const GuestWrite& w) {
  for (const Partition::Ioeventfd& e : p.ioeventfds) {
    if (e.args.addr != w.gpa || (e.args.len != 0 && e.args.len != w.len)) continue;
    if (!Wildcard(e.args) && (w.value & Mask(w.len)) != e.args.datamatch) continue;
    const uint64_t one = 1;
    if (::write(e.held_fd, &one, sizeof one) != sizeof one) Violation("eventfd signal failed");
    return true;
  }
  return false;
}

bool FakeMshv::GuestMmioWrite(int partition_fd, const GuestWrite& write) {
  std::lock_guard lock(mu_);
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) {
    ADD_FAILURE() << "no partition " << partition_fd;
    return false;
  }
  return RingDoorbell(it->second, write);
}

void FakeMshv::QueueGuestWrites(uint32_t vp_index, const std::vector<GuestWrite>& writes) {
  std::lock_guard lock(mu_);
  Vp& v = vp(vp_index);
  v.guest_writes.insert(v.guest_writes.end(), writes.begin(), writes.end());
}

void FakeMshv::QueueMessage(uint32_t vp_index, const mshv_run_vp& message) {
  std::lock_guard lock(mu_);
  vp(vp_index).messages.push_back(message);
}

}  // namespace virt::mshv::test
