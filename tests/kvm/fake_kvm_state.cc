// FakeKvmState's configuration, its queries for tests, and the helpers its ioctls share.
#include "mock_kvm_ioctl.h"

namespace virt::kvm::test {

void FakeKvmState::SetCapability(int cap, int value) {
  std::lock_guard lock(mu_);
  caps_[cap] = value;
}

void FakeKvmState::SetApiVersion(int version) {
  std::lock_guard lock(mu_);
  api_version_ = version;
}

void FakeKvmState::SetMmapSize(int size) {
  std::lock_guard lock(mu_);
  mmap_size_ = size;
}

void FakeKvmState::SetOpenErrno(int err) {
  std::lock_guard lock(mu_);
  open_errno_ = err;
}

void FakeKvmState::SetCpuid(std::vector<kvm_cpuid_entry2> entries) {
  std::lock_guard lock(mu_);
  cpuid_ = std::move(entries);
}

void FakeKvmState::SetSignalMsiResult(int result) {
  std::lock_guard lock(mu_);
  signal_msi_result_ = result;
}

void FakeKvmState::SetMsrLimit(std::optional<int> n) {
  std::lock_guard lock(mu_);
  msr_limit_ = n;
}

void FakeKvmState::KeepPushHistory(bool keep) {
  std::lock_guard lock(mu_);
  keep_history_ = keep;
}

void FakeKvmState::FailCall(const char* op, int occurrence, int err) {
  std::lock_guard lock(mu_);
  fail_op_ = op;
  fail_occurrence_ = occurrence;
  fail_seen_ = 0;
  fail_errno_ = err;
  fail_fired_ = false;
}

void FakeKvmState::ClearFailure() {
  std::lock_guard lock(mu_);
  fail_op_.clear();
}

bool FakeKvmState::failure_fired() {
  std::lock_guard lock(mu_);
  return fail_fired_;
}

std::vector<std::string> FakeKvmState::calls() {
  std::lock_guard lock(mu_);
  return {calls_.begin(), calls_.end()};
}

size_t FakeKvmState::call_count() {
  std::lock_guard lock(mu_);
  return calls_.size();
}

std::vector<std::string> FakeKvmState::calls_since(size_t first) {
  std::lock_guard lock(mu_);
  return {calls_.begin() + static_cast<std::ptrdiff_t>(std::min(first, calls_.size())),
          calls_.end()};
}

std::vector<std::string> FakeKvmState::problems() {
  std::lock_guard lock(mu_);
  return problems_;
}

std::vector<std::string> FakeKvmState::TakeProblems() {
  std::lock_guard lock(mu_);
  return std::exchange(problems_, {});
}

std::vector<int> FakeKvmState::capabilities_checked() {
  std::lock_guard lock(mu_);
  return caps_checked_;
}

std::vector<std::string> FakeKvmState::opened_paths() {
  std::lock_guard lock(mu_);
  return opened_paths_;
}

std::map<int, int> FakeKvmState::open_fds() {
  std::lock_guard lock(mu_);
  std::map<int, int> out;
  for (auto [fd, n] : open_fds_) {
    if (n != 0) out[fd] = n;
  }
  return out;
}

int FakeKvmState::close_count(int fd) {
  std::lock_guard lock(mu_);
  return closes_[fd];
}

size_t FakeKvmState::mapped_runs() {
  std::lock_guard lock(mu_);
  return mapped_.size();
}

kvm_run* FakeKvmState::run(int vcpu_fd) {
  std::lock_guard lock(mu_);
  auto it = run_by_fd_.find(vcpu_fd);
  return it == run_by_fd_.end() ? nullptr : it->second;
}

std::vector<kvm_userspace_memory_region> FakeKvmState::memory_calls() {
  std::lock_guard lock(mu_);
  return memory_calls_;
}

std::vector<kvm_msi> FakeKvmState::msis_signalled() {
  std::lock_guard lock(mu_);
  return msis_;
}

std::vector<kvm_irqfd> FakeKvmState::irqfd_calls() {
  std::lock_guard lock(mu_);
  return irqfd_calls_;
}

std::set<std::pair<uint32_t, uint32_t>> FakeKvmState::assigned_irqfds() {
  std::lock_guard lock(mu_);
  return assigned_;
}

bool FakeKvmState::irqfd_assigned(int event_fd, uint32_t gsi) {
  std::lock_guard lock(mu_);
  return assigned_.contains({static_cast<uint32_t>(event_fd), gsi});
}

void FakeKvmState::EventClosed(int event_fd) {
  std::lock_guard lock(mu_);
  std::erase_if(assigned_, [event_fd](const auto& a) {
    return a.first == static_cast<uint32_t>(event_fd);
  });
}

uint64_t FakeKvmState::pushes() {
  std::lock_guard lock(mu_);
  return pushes_;
}

uint64_t FakeKvmState::failed_pushes() {
  std::lock_guard lock(mu_);
  return failed_pushes_;
}

RoutingTable FakeKvmState::last_table() {
  std::lock_guard lock(mu_);
  return table_;
}

std::vector<RoutingTable> FakeKvmState::push_history() {
  std::lock_guard lock(mu_);
  return history_;
}

std::vector<kvm_pit_config> FakeKvmState::pit_configs() {
  std::lock_guard lock(mu_);
  return pits_;
}

std::map<uint32_t, uint32_t> FakeKvmState::resamplers() {
  std::lock_guard lock(mu_);
  return resamplers_;
}

FakeKvmState::VcpuStateStore& FakeKvmState::vcpu_state(int fd) {
  std::lock_guard lock(mu_);
  return vcpu_state_[fd];
}

void FakeKvmState::RefuseMsr(uint32_t index) {
  std::lock_guard lock(mu_);
  refused_msrs_.insert(index);
}

void FakeKvmState::MarkDirty(uint32_t slot, uint64_t page) {
  std::lock_guard lock(mu_);
  auto& bits = dirty_[slot];
  if (bits.size() <= page / 64) bits.resize(page / 64 + 1, 0);
  bits[page / 64] |= uint64_t{1} << (page % 64);
}

bool FakeKvmState::manual_dirty_protect() {
  std::lock_guard lock(mu_);
  return manual_protect_;
}

std::vector<kvm_clear_dirty_log> FakeKvmState::clear_calls() {
  std::lock_guard lock(mu_);
  return clears_;
}

std::vector<kvm_ioeventfd> FakeKvmState::ioeventfd_calls() {
  std::lock_guard lock(mu_);
  return ioeventfd_calls_;
}

std::vector<kvm_ioeventfd> FakeKvmState::ioeventfds() {
  std::lock_guard lock(mu_);
  return ioeventfds_;
}

std::vector<kvm_irq_level> FakeKvmState::irq_lines() {
  std::lock_guard lock(mu_);
  return lines_;
}

uint32_t FakeKvmState::mp_state(int vcpu_fd) {
  std::lock_guard lock(mu_);
  return mp_states_[vcpu_fd];
}

void FakeKvmState::set_mp_state(int vcpu_fd, uint32_t state) {
  std::lock_guard lock(mu_);
  mp_states_[vcpu_fd] = state;
}

std::vector<uint8_t> FakeKvmState::cpuid_set(int vcpu_fd) {
  std::lock_guard lock(mu_);
  return cpuid_set_[vcpu_fd];
}

std::vector<kvm_cpuid_entry2> FakeKvmState::CpuidEntriesSet(int vcpu_fd) {
  std::vector<uint8_t> raw = cpuid_set(vcpu_fd);
  std::vector<kvm_cpuid_entry2> out;
  constexpr size_t kEntries = offsetof(kvm_cpuid2, entries);
  if (raw.size() < kEntries) return out;
  uint32_t nent;
  std::memcpy(&nent, raw.data() + offsetof(kvm_cpuid2, nent), sizeof nent);
  out.resize(nent);
  std::memcpy(out.data(), raw.data() + kEntries, nent * sizeof(kvm_cpuid_entry2));
  return out;
}

std::vector<std::vector<kvm_msr_entry>> FakeKvmState::msr_calls() {
  std::lock_guard lock(mu_);
  return msr_calls_;
}

std::vector<kvm_cpuid_entry2> FakeKvmState::DefaultCpuid() {
  std::vector<kvm_cpuid_entry2> v;
  auto add = [&v](uint32_t fn, uint32_t index, uint32_t flags, uint32_t eax, uint32_t ebx,
                  uint32_t ecx, uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = fn, e.index = index, e.flags = flags;
    e.eax = eax, e.ebx = ebx, e.ecx = ecx, e.edx = edx;
    v.push_back(e);
  };
  add(0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69);  // "GenuineIntel"
  add(1, 0, 0, 0x000906ea, 0xAB010800, 0x7ffafbff, 0xbfebfbff);
  add(0xB, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 1, 1, 0x100, 0xCD);
  add(0xB, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, 4, 4, 0x201, 0xCD);
  add(0x80000001, 0, 0, 0, 0, 0x121, 0x2c100800);
  return v;
}

std::optional<Error> FakeKvmState::Enter(const char* op) {
  calls_.push_back(op);
  if (fail_op_.empty() || fail_op_ != op) return std::nullopt;
  if (fail_seen_++ != fail_occurrence_) return std::nullopt;
  fail_fired_ = true;
  return Error::Errno(op, fail_errno_);
}

Status FakeKvmState::Simple(const char* op) {
  std::lock_guard lock(mu_);
  if (auto e = Enter(op)) return *e;
  return Ok();
}

bool FakeKvmState::Routed(const RoutingTable& table, uint32_t gsi) {
  return HasMsiEntry(table, gsi) || HasIoapicEntry(table, gsi);
}

int FakeKvmState::Processed(const kvm_msr_entry* entries, uint32_t n) const {
  int limit = msr_limit_ ? std::min(*msr_limit_, static_cast<int>(n)) : static_cast<int>(n);
  for (int i = 0; i < limit; ++i) {
    if (refused_msrs_.contains(entries[i].index)) return i;
  }
  return limit;
}

Status FakeKvmState::MsrList(const char* op, const std::vector<uint32_t>& list, kvm_msr_list* out) {
  std::lock_guard lock(mu_);
  if (auto e = Enter(op)) return *e;
  const uint32_t capacity = out->nmsrs;
  out->nmsrs = static_cast<uint32_t>(list.size());
  if (capacity < list.size()) return Error::Errno(op, E2BIG);
  std::copy(list.begin(), list.end(), out->indices);
  return Ok();
}

}  // namespace virt::kvm::test
