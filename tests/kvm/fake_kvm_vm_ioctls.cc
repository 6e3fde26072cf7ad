// FakeKvmState's /dev/kvm and VM ioctls: fds, capabilities, memory slots, routing, irqfds,
// ioeventfds, irqchip/PIT/clock state, dirty logs, vCPU creation and KVM_RUN.
#include "mock_kvm_ioctl.h"

namespace virt::kvm::test {

Result<int> FakeKvmState::Open(const char* path) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("open")) return Error::Errno("open", static_cast<int>(e->native_code), path);
  opened_paths_.emplace_back(path);
  if (open_errno_ != 0) return Error::Errno("open", open_errno_, path);
  ++open_fds_[kKvmFd];
  return kKvmFd;
}

Status FakeKvmState::Close(int fd) {
  std::lock_guard lock(mu_);
  auto failed = Enter("close");  // the fd is gone either way
  ++closes_[fd];
  if (open_fds_[fd] <= 0) {
    problems_.push_back("close(" + std::to_string(fd) + ") of an fd that is not open");
  } else if (--open_fds_[fd] == 0 && fd == kVmFd) {
    // Closing the VM fd releases its irqfds, routes and memslots.
    assigned_.clear();
    table_.clear();
    slots_.clear();
    irqchip_ = false;
    ioeventfds_.clear();
    dirty_.clear();
    manual_protect_ = false;
  }
  if (failed) return *failed;
  return Ok();
}

Result<int> FakeKvmState::GetApiVersion(int) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_API_VERSION")) return *e;
  return api_version_;
}

Result<int> FakeKvmState::CheckExtension(int, int cap) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_CHECK_EXTENSION")) return *e;
  caps_checked_.push_back(cap);
  if (auto it = caps_.find(cap); it != caps_.end()) return it->second;
  switch (cap) {
    case KVM_CAP_IRQ_ROUTING: return kMaxIrqRoutes;
    case KVM_CAP_NR_MEMSLOTS: return kMaxMemslots;
    case KVM_CAP_MAX_VCPUS: return kMaxVcpus;
    case KVM_CAP_XSAVE2: return kXsave2Size;
    default: return 1;
  }
}

Result<int> FakeKvmState::GetVcpuMmapSize(int) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_VCPU_MMAP_SIZE")) return *e;
  return mmap_size_;
}

Status FakeKvmState::GetSupportedCpuid(int, kvm_cpuid2* cpuid) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_SUPPORTED_CPUID")) return *e;
  if (cpuid->nent < cpuid_.size()) return Error::Errno("KVM_GET_SUPPORTED_CPUID", E2BIG);
  cpuid->nent = static_cast<uint32_t>(cpuid_.size());
  std::copy(cpuid_.begin(), cpuid_.end(), cpuid->entries);
  return Ok();
}

Status FakeKvmState::GetMsrFeatureIndexList(int, kvm_msr_list* list) {
  return MsrList("KVM_GET_MSR_FEATURE_INDEX_LIST", kFakeFeatureMsrs, list);
}

Result<int> FakeKvmState::CreateVm(int, unsigned long) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_CREATE_VM")) return *e;
  ++open_fds_[kVmFd];
  return kVmFd;
}

Status FakeKvmState::CreateIrqchip(int) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_CREATE_IRQCHIP")) return *e;
  if (irqchip_) problems_.push_back("second KVM_CREATE_IRQCHIP");
  irqchip_ = true;
  table_ = IrqchipDefaultTable();  // what the kernel routes until the first push
  return Ok();
}

Status FakeKvmState::CreatePit2(int, const kvm_pit_config& config) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_CREATE_PIT2")) return *e;
  if (!irqchip_) problems_.push_back("KVM_CREATE_PIT2 before KVM_CREATE_IRQCHIP");
  pits_.push_back(config);
  return Ok();
}

Status FakeKvmState::IrqLine(int, const kvm_irq_level& level) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_IRQ_LINE")) return *e;
  if (!irqchip_) problems_.push_back("KVM_IRQ_LINE without an irqchip");
  lines_.push_back(level);
  return Ok();
}

Status FakeKvmState::SetUserMemoryRegion(int, const kvm_userspace_memory_region& r) {
  std::lock_guard lock(mu_);
  memory_calls_.push_back(r);
  if (auto e = Enter("KVM_SET_USER_MEMORY_REGION")) return *e;
  if (r.memory_size == 0) {
    dirty_.erase(r.slot);  // a deleted slot's log goes with it
    if (slots_.erase(r.slot) == 0) {
      problems_.push_back("deleting memslot " + std::to_string(r.slot) + " that is not set");
    }
  } else {
    slots_[r.slot] = r;
  }
  return Ok();
}

Status FakeKvmState::SetGsiRouting(int, const kvm_irq_routing& routing) {
  std::lock_guard lock(mu_);
  // The caller reuses its buffer: copy the entries now.
  RoutingTable table(routing.entries, routing.entries + routing.nr);
  if (routing.flags != 0) problems_.push_back("kvm_irq_routing.flags != 0");
  if (auto e = Enter("KVM_SET_GSI_ROUTING")) {
    ++failed_pushes_;
    return *e;
  }
  for (const auto& [fd, gsi] : assigned_) {
    if (!Routed(table, gsi)) {
      problems_.push_back("push dropped GSI " + std::to_string(gsi) + " while irqfd " +
                          std::to_string(fd) + " is assigned to it");
    }
  }
  ++pushes_;
  table_ = std::move(table);
  if (keep_history_) history_.push_back(table_);
  return Ok();
}

Status FakeKvmState::Irqfd(int, const kvm_irqfd& irqfd) {
  std::lock_guard lock(mu_);
  irqfd_calls_.push_back(irqfd);
  if (auto e = Enter("KVM_IRQFD")) return *e;
  const std::pair<uint32_t, uint32_t> key{irqfd.fd, irqfd.gsi};
  const std::string what = "irqfd " + std::to_string(irqfd.fd) + " GSI " +
                           std::to_string(irqfd.gsi);
  if (irqfd.flags & KVM_IRQFD_FLAG_DEASSIGN) {
    if (irqfd.flags != KVM_IRQFD_FLAG_DEASSIGN) {
      problems_.push_back("deassign with flags " + std::to_string(irqfd.flags));
    }
    if (!Routed(table_, irqfd.gsi)) {
      problems_.push_back("deassign of " + what + " after its entry left the table");
    }
    if (assigned_.erase(key) == 0) problems_.push_back("deassign of unassigned " + what);
    resamplers_.erase(irqfd.fd);
  } else {
    if (irqfd.flags == KVM_IRQFD_FLAG_RESAMPLE) {
      // KVM resamples on the irqchip's EOI: only irqchip pin routes can use it.
      if (!HasIoapicEntry(table_, irqfd.gsi)) {
        problems_.push_back("resample irqfd on " + what + ", not an irqchip pin");
      }
      resamplers_[irqfd.fd] = irqfd.resamplefd;
    } else if (irqfd.flags != 0) {
      problems_.push_back("assign with flags " + std::to_string(irqfd.flags));
    } else if (irqfd.resamplefd != 0) {
      problems_.push_back("resamplefd set without KVM_IRQFD_FLAG_RESAMPLE");
    }
    if (!Routed(table_, irqfd.gsi)) {
      problems_.push_back("assign of " + what + " before its entry was pushed");
    }
    for (const auto& a : assigned_) {
      if (a.first == irqfd.fd) problems_.push_back("second assign of eventfd for " + what);
    }
    assigned_.insert(key);
  }
  return Ok();
}

Result<int> FakeKvmState::SignalMsi(int, const kvm_msi& msi) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SIGNAL_MSI")) return *e;
  msis_.push_back(msi);
  return signal_msi_result_;
}

Status FakeKvmState::Ioeventfd(int, const kvm_ioeventfd& k) {
  std::lock_guard lock(mu_);
  ioeventfd_calls_.push_back(k);
  if (auto e = Enter("KVM_IOEVENTFD")) return *e;
  const bool pio = k.flags & KVM_IOEVENTFD_FLAG_PIO;
  const bool wildcard = !(k.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
  if (k.flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
    auto it = std::find_if(ioeventfds_.begin(), ioeventfds_.end(), [&](const kvm_ioeventfd& o) {
      const bool o_pio = o.flags & KVM_IOEVENTFD_FLAG_PIO;
      const bool o_wild = !(o.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
      return o_pio == pio && o.addr == k.addr && o.len == k.len && o.fd == k.fd &&
             o_wild == wildcard && (wildcard || o.datamatch == k.datamatch);
    });
    if (it == ioeventfds_.end()) return Error::Errno("KVM_IOEVENTFD", ENOENT);
    ioeventfds_.erase(it);
    return Ok();
  }
  if (k.len != 0 && k.len != 1 && k.len != 2 && k.len != 4 && k.len != 8) {
    return Error::Errno("KVM_IOEVENTFD", EINVAL);
  }
  if (k.len == 0 && !wildcard) return Error::Errno("KVM_IOEVENTFD", EINVAL);
  for (const kvm_ioeventfd& o : ioeventfds_) {
    const bool o_pio = o.flags & KVM_IOEVENTFD_FLAG_PIO;
    const bool o_wild = !(o.flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
    if (o_pio == pio && o.addr == k.addr &&
        (o.len == 0 || k.len == 0 ||
         (o.len == k.len && (o_wild || wildcard || o.datamatch == k.datamatch)))) {
      return Error::Errno("KVM_IOEVENTFD", EEXIST);
    }
  }
  ioeventfds_.push_back(k);
  return Ok();
}

Status FakeKvmState::GetIrqchip(int, kvm_irqchip* chip) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_IRQCHIP")) return *e;
  if (!irqchip_ || chip->chip_id > 2) return Error::Errno("KVM_GET_IRQCHIP", EINVAL);
  const uint32_t id = chip->chip_id;
  *chip = chips_[id];
  chip->chip_id = id;
  return Ok();
}

Status FakeKvmState::SetIrqchip(int, const kvm_irqchip& chip) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_IRQCHIP")) return *e;
  if (!irqchip_ || chip.chip_id > 2) return Error::Errno("KVM_SET_IRQCHIP", EINVAL);
  chips_[chip.chip_id] = chip;
  return Ok();
}

Status FakeKvmState::GetPit2(int, kvm_pit_state2* pit) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_PIT2")) return *e;
  if (pits_.empty()) return Error::Errno("KVM_GET_PIT2", ENXIO);
  *pit = pit_;
  return Ok();
}

Status FakeKvmState::SetPit2(int, const kvm_pit_state2& pit) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_PIT2")) return *e;
  if (pits_.empty()) return Error::Errno("KVM_SET_PIT2", ENXIO);
  pit_ = pit;
  return Ok();
}

Status FakeKvmState::SetClock(int, const kvm_clock_data& clock) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_SET_CLOCK")) return *e;
  if (clock.flags & ~uint32_t{KVM_CLOCK_REALTIME}) return Error::Errno("KVM_SET_CLOCK", EINVAL);
  clock_.clock = clock.clock;
  return Ok();
}

Status FakeKvmState::GetDirtyLog(int, const kvm_dirty_log& log) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_GET_DIRTY_LOG")) return *e;
  auto slot = slots_.find(log.slot);
  if (slot == slots_.end() || !(slot->second.flags & KVM_MEM_LOG_DIRTY_PAGES)) {
    return Error::Errno("KVM_GET_DIRTY_LOG", ENOENT);
  }
  const size_t words = (slot->second.memory_size / 4096 + 63) / 64;
  auto& bits = dirty_[log.slot];
  bits.resize(std::max(bits.size(), words), 0);
  std::memcpy(log.dirty_bitmap, bits.data(), words * 8);
  if (!manual_protect_) std::fill(bits.begin(), bits.end(), 0);
  return Ok();
}

Status FakeKvmState::ClearDirtyLog(int, const kvm_clear_dirty_log& log) {
  std::lock_guard lock(mu_);
  clears_.push_back(log);
  if (auto e = Enter("KVM_CLEAR_DIRTY_LOG")) return *e;
  auto slot = slots_.find(log.slot);
  if (!manual_protect_ || slot == slots_.end()) return Error::Errno("KVM_CLEAR_DIRTY_LOG", EINVAL);
  const uint64_t pages = slot->second.memory_size / 4096;
  // KVM: first_page a multiple of 64; num_pages too, unless the range ends at the slot's end.
  if (log.first_page % 64 != 0 || log.first_page + log.num_pages > pages ||
      (log.num_pages % 64 != 0 && log.first_page + log.num_pages != pages)) {
    return Error::Errno("KVM_CLEAR_DIRTY_LOG", EINVAL);
  }
  auto& bits = dirty_[log.slot];
  const auto* mask = static_cast<const uint64_t*>(log.dirty_bitmap);
  for (uint64_t i = 0; i < log.num_pages; ++i) {
    const uint64_t page = log.first_page + i;
    if (!((mask[i / 64] >> (i % 64)) & 1) || page / 64 >= bits.size()) continue;
    bits[page / 64] &= ~(uint64_t{1} << (page % 64));
  }
  return Ok();
}

Status FakeKvmState::EnableCap(int, const kvm_enable_cap& cap) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_ENABLE_CAP")) return *e;
  if (cap.cap == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) {
    if (cap.args[0] & ~uint64_t{KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}) {
      return Error::Errno("KVM_ENABLE_CAP", EINVAL);
    }
    manual_protect_ = cap.args[0] != 0;
    return Ok();
  }
  return Error::Errno("KVM_ENABLE_CAP", EINVAL);
}

Result<int> FakeKvmState::CreateVcpu(int, unsigned long id) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_CREATE_VCPU")) return *e;
  const int fd = kVcpuFdBase + static_cast<int>(id);
  ++open_fds_[fd];
  // With the in-kernel LAPIC, vCPU 0 is the boot processor and the others wait for INIT/SIPI.
  mp_states_[fd] = (irqchip_ && id != 0) ? KVM_MP_STATE_UNINITIALIZED : KVM_MP_STATE_RUNNABLE;
  return fd;
}

Status FakeKvmState::UnmapRun(kvm_run* run, size_t size) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("munmap(kvm_run)")) return *e;
  auto it = mapped_.find(run);
  if (it == mapped_.end()) {
    problems_.push_back("munmap of a kvm_run that is not mapped");
  } else {
    if (it->second != size) problems_.push_back("munmap of kvm_run with the wrong size");
    mapped_.erase(it);
  }
  return Ok();
}

Status FakeKvmState::Run(int vcpu_fd) {
  std::lock_guard lock(mu_);
  if (auto e = Enter("KVM_RUN")) return *e;
  ran_.insert(vcpu_fd);
  if (auto it = run_by_fd_.find(vcpu_fd); it != run_by_fd_.end()) {
    it->second->exit_reason = KVM_EXIT_HLT;
  }
  return Ok();
}

}  // namespace virt::kvm::test
