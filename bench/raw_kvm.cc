// raw_kvm: plain-ioctl VM, routing, irqfd and test-guest setup for the benchmarks' baseline.
#include "raw_kvm.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "test_guest.h"  // the image bytes and port numbers only: data, not library code

namespace virt_bench::raw {
namespace {

// The 8-byte headers of the variable-length ioctl arguments, as the kernel ABI lays them out,
// and the ioctl numbers built from them. <linux/kvm.h> from linux-libc-dev before 6.5 (e.g.
// Debian bookworm's 6.1) declares those flexible arrays with __DECLARE_FLEX_ARRAY, whose
// expansion holds an empty struct: 0 bytes in C, 1 byte in C++. In C++ that makes
// sizeof(kvm_irq_routing) 16 and sizeof(kvm_cpuid2) 12 instead of 8, moves `entries` to match,
// and bakes the wrong size into KVM_SET_GSI_ROUTING, KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2
// (the kernel rejects them). The baseline therefore never uses those structs' sizes.
struct RoutingHeader {
  uint32_t nr;
  uint32_t flags;
};
struct CpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
constexpr size_t kHeaderSize = 8;
static_assert(sizeof(RoutingHeader) == kHeaderSize && sizeof(CpuidHeader) == kHeaderSize);
static_assert(sizeof(kvm_irq_routing_entry) == 48 && sizeof(kvm_cpuid_entry2) == 40);
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, RoutingHeader);
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
static_assert(kSetGsiRouting == 0x4008ae6a && kGetSupportedCpuid == 0xc008ae05 &&
              kSetCpuid2 == 0x4008ae90);

// Same addresses as the KVM backend (just below 4 GiB, away from the guest's 2 MiB).
constexpr uint64_t kIdentityMapAddress = 0xfeffc000;
constexpr uint64_t kTssAddress = 0xfeffd000;
constexpr uint64_t kStackTop = 0x9000;

std::unexpected<std::string> Failed(const char* what) {
  return std::unexpected(std::string(what) + ": " + std::strerror(errno));
}

// ioctl(2) re-entered on EINTR (a signal during a slow ioctl is not a failure).
int Ioctl(int fd, unsigned long request, auto arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

void FlatSegment(kvm_segment& s, uint16_t selector, uint8_t type) {
  s = kvm_segment{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.db = 1;
  s.s = 1;
  s.g = 1;
}

}  // namespace

void Fd::Reset() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

Expected<System> System::Open() {
  System s;
  s.kvm = Fd(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (s.kvm.get() < 0) return Failed("open /dev/kvm");
  if (::ioctl(s.kvm.get(), KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
    return Failed("KVM_GET_API_VERSION");
  }
  const int run_size = ::ioctl(s.kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size < static_cast<int>(sizeof(kvm_run))) return Failed("KVM_GET_VCPU_MMAP_SIZE");
  s.run_size = static_cast<size_t>(run_size);
  s.identity_map_addr =
      ::ioctl(s.kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0;
  for (uint32_t nent = 128; nent <= 4096; nent *= 2) {
    s.cpuid.assign(kHeaderSize + nent * sizeof(kvm_cpuid_entry2), 0);
    auto* header = reinterpret_cast<CpuidHeader*>(s.cpuid.data());
    header->nent = nent;
    if (::ioctl(s.kvm.get(), kGetSupportedCpuid, header) == 0) {
      auto* entries = reinterpret_cast<kvm_cpuid_entry2*>(s.cpuid.data() + kHeaderSize);
      // The APIC ID the guest reads from CPUID is vCPU 0's, as the library sets it.
      for (uint32_t i = 0; i < header->nent; ++i) {
        kvm_cpuid_entry2& e = entries[i];
        if (e.function == 1) e.ebx &= 0x00FFFFFFu;
        if (e.function == 0xB || e.function == 0x1F) e.edx = 0;
      }
      s.cpuid.resize(kHeaderSize + header->nent * sizeof(kvm_cpuid_entry2));
      return s;
    }
    if (errno != E2BIG) break;
  }
  return Failed("KVM_GET_SUPPORTED_CPUID");
}

Expected<Fd> CreateVm(const System& system) {
  Fd vm(Ioctl(system.kvm.get(), KVM_CREATE_VM, 0UL));
  if (vm.get() < 0) return Failed("KVM_CREATE_VM");
  uint64_t identity_map = kIdentityMapAddress;
  if (system.identity_map_addr && Ioctl(vm.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0) {
    return Failed("KVM_SET_IDENTITY_MAP_ADDR");
  }
  if (Ioctl(vm.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(kTssAddress)) < 0) {
    return Failed("KVM_SET_TSS_ADDR");
  }
  if (Ioctl(vm.get(), KVM_CREATE_IRQCHIP, 0UL) < 0) return Failed("KVM_CREATE_IRQCHIP");
  return vm;
}

Expected<void> SetMsiRouting(int vm_fd, uint32_t count) {
  const size_t n = 16 + 24 + count;
  // The 8-byte header, then the entries (8-byte aligned: the buffer is made of uint64_t).
  std::vector<uint64_t> buf((kHeaderSize + n * sizeof(kvm_irq_routing_entry)) / 8);
  auto* header = reinterpret_cast<RoutingHeader*>(buf.data());
  header->nr = static_cast<uint32_t>(n);
  header->flags = 0;
  auto* e = reinterpret_cast<kvm_irq_routing_entry*>(buf.data() + kHeaderSize / 8);
  for (uint32_t gsi = 0; gsi < 16; ++gsi, ++e) {
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_IRQCHIP;
    e->u.irqchip.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
    e->u.irqchip.pin = gsi % 8;
  }
  for (uint32_t gsi = 0; gsi < 24; ++gsi, ++e) {
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_IRQCHIP;
    e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
    e->u.irqchip.pin = gsi;
  }
  for (uint32_t i = 0; i < count; ++i, ++e) {
    e->gsi = kFirstMsiGsi + i;
    e->type = KVM_IRQ_ROUTING_MSI;
    e->u.msi.address_lo = kMsiAddress;
    e->u.msi.address_hi = 0;
    e->u.msi.data = kMsiData;
  }
  if (Ioctl(vm_fd, kSetGsiRouting, header) < 0) return Failed("KVM_SET_GSI_ROUTING");
  return {};
}

Expected<Fd> NewEventFd() {
  Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (fd.get() < 0) return Failed("eventfd");
  return fd;
}

Expected<void> AssignIrqfd(int vm_fd, int event_fd, uint32_t gsi) {
  kvm_irqfd a{};
  a.fd = static_cast<uint32_t>(event_fd);
  a.gsi = gsi;
  if (Ioctl(vm_fd, KVM_IRQFD, &a) < 0) return Failed("KVM_IRQFD assign");
  return {};
}

Expected<void> DeassignIrqfd(int vm_fd, int event_fd, uint32_t gsi) {
  kvm_irqfd d{};
  d.fd = static_cast<uint32_t>(event_fd);
  d.gsi = gsi;
  d.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (Ioctl(vm_fd, KVM_IRQFD, &d) < 0) return Failed("KVM_IRQFD deassign");
  return {};
}

Expected<Guest> Guest::Create(const System& system, int vm_fd) {
  using namespace virt::guest;
  Guest g;
  void* mem = ::mmap(nullptr, kMemorySize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
  if (mem == MAP_FAILED) return Failed("mmap guest memory");
  g.memory_ = static_cast<uint8_t*>(mem);
  const auto image = Image();
  std::memcpy(g.memory_ + kLoadAddress, image.data(), image.size());

  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kMemorySize;
  region.userspace_addr = reinterpret_cast<uintptr_t>(g.memory_);
  if (Ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return Failed("KVM_SET_USER_MEMORY_REGION");
  }

  g.vcpu_ = Fd(Ioctl(vm_fd, KVM_CREATE_VCPU, 0UL));
  if (g.vcpu_.get() < 0) return Failed("KVM_CREATE_VCPU");
  void* run = ::mmap(nullptr, system.run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     g.vcpu_.get(), 0);
  if (run == MAP_FAILED) return Failed("mmap kvm_run");
  g.run_ = static_cast<kvm_run*>(run);
  g.run_size_ = system.run_size;
  if (Ioctl(g.vcpu_.get(), kSetCpuid2, system.cpuid.data()) < 0) {
    return Failed("KVM_SET_CPUID2");
  }

  kvm_sregs sregs{};
  if (Ioctl(g.vcpu_.get(), KVM_GET_SREGS, &sregs) < 0) return Failed("KVM_GET_SREGS");
  FlatSegment(sregs.cs, 0x08, 0xb);  // execute/read, accessed
  FlatSegment(sregs.ds, 0x10, 0x3);  // read/write, accessed
  sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
  sregs.cr0 |= 1;  // PE
  if (Ioctl(g.vcpu_.get(), KVM_SET_SREGS, &sregs) < 0) return Failed("KVM_SET_SREGS");
  kvm_regs regs{};
  regs.rip = kLoadAddress;
  regs.rflags = 0x2;
  regs.rsp = kStackTop;
  if (Ioctl(g.vcpu_.get(), KVM_SET_REGS, &regs) < 0) return Failed("KVM_SET_REGS");
  return g;
}

Guest::Guest(Guest&& other) noexcept
    : memory_(std::exchange(other.memory_, nullptr)),
      vcpu_(std::move(other.vcpu_)),
      run_(std::exchange(other.run_, nullptr)),
      run_size_(std::exchange(other.run_size_, 0)) {}

Guest::~Guest() {
  if (run_ != nullptr) ::munmap(run_, run_size_);
  vcpu_.Reset();
  if (memory_ != nullptr) ::munmap(memory_, virt::guest::kMemorySize);
}

Expected<void> Guest::Run() {
  // KVM_RUN returns EINTR when a signal arrives; the guest state is intact, so enter again.
  if (Ioctl(vcpu_.get(), KVM_RUN, 0UL) < 0) return Failed("KVM_RUN");
  return {};
}

Expected<void> Guest::RunToEvent(uint32_t mode) {
  using namespace virt::guest;
  auto* base = reinterpret_cast<uint8_t*>(run_);
  for (;;) {
    if (auto r = Run(); !r) return r;
    if (run_->exit_reason == KVM_EXIT_IO) {
      const auto& io = run_->io;
      if (io.direction == KVM_EXIT_IO_OUT && (io.port == kHelloPort || io.port == kEchoPort)) {
        continue;
      }
      if (io.direction == KVM_EXIT_IO_IN && io.port == kModePort && io.size == 4) {
        std::memcpy(base + io.data_offset, &mode, 4);
        continue;
      }
    }
    if (run_->exit_reason == KVM_EXIT_MMIO && !run_->mmio.is_write &&
        run_->mmio.phys_addr == kMmioAddress) {
      std::memset(run_->mmio.data, 0, sizeof run_->mmio.data);
      continue;
    }
    return {};
  }
}

std::optional<uint32_t> Guest::OutValue(uint16_t port) const {
  if (run_->exit_reason != KVM_EXIT_IO || run_->io.direction != KVM_EXIT_IO_OUT ||
      run_->io.port != port || run_->io.count != 1 || run_->io.size > 4) {
    return std::nullopt;
  }
  uint32_t v = 0;
  std::memcpy(&v, reinterpret_cast<const uint8_t*>(run_) + run_->io.data_offset, run_->io.size);
  return v;
}

std::string Guest::ExitText() const {
  char buf[96];
  if (run_->exit_reason == KVM_EXIT_IO) {
    std::snprintf(buf, sizeof buf, "exit reason %u (io, port 0x%x, %s)", run_->exit_reason,
                  run_->io.port, run_->io.direction == KVM_EXIT_IO_OUT ? "out" : "in");
  } else if (run_->exit_reason == KVM_EXIT_MMIO) {
    std::snprintf(buf, sizeof buf, "exit reason %u (mmio, 0x%llx)", run_->exit_reason,
                  static_cast<unsigned long long>(run_->mmio.phys_addr));
  } else {
    std::snprintf(buf, sizeof buf, "exit reason %u", run_->exit_reason);
  }
  return buf;
}

// --- Doorbells, MSIs and the dirty log ---

namespace {

kvm_ioeventfd IoeventfdArgs(int event_fd, bool pio, uint64_t address, uint32_t length) {
  kvm_ioeventfd k{};
  k.addr = address;
  k.len = length;
  k.fd = event_fd;
  if (pio) k.flags |= KVM_IOEVENTFD_FLAG_PIO;
  return k;
}

}  // namespace

Expected<void> AssignIoeventfd(int vm_fd, int event_fd, bool pio, uint64_t address,
                               uint32_t length) {
  kvm_ioeventfd k = IoeventfdArgs(event_fd, pio, address, length);
  if (Ioctl(vm_fd, KVM_IOEVENTFD, &k) < 0) return Failed("KVM_IOEVENTFD assign");
  return {};
}

Expected<void> DeassignIoeventfd(int vm_fd, int event_fd, bool pio, uint64_t address,
                                 uint32_t length) {
  kvm_ioeventfd k = IoeventfdArgs(event_fd, pio, address, length);
  k.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (Ioctl(vm_fd, KVM_IOEVENTFD, &k) < 0) return Failed("KVM_IOEVENTFD deassign");
  return {};
}

Expected<void> SignalMsi(int vm_fd, uint32_t data) {
  kvm_msi msi{};
  msi.address_lo = kMsiAddress;
  msi.data = data;
  if (Ioctl(vm_fd, KVM_SIGNAL_MSI, &msi) < 0) return Failed("KVM_SIGNAL_MSI");
  return {};
}

Expected<bool> EnableManualDirtyLog(const System& system, int vm_fd) {
  const int caps =
      ::ioctl(system.kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
  if (caps < 0) return Failed("KVM_CHECK_EXTENSION");
  if ((caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) == 0) return false;
  kvm_enable_cap cap{};
  cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
  cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
  if (Ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0) return Failed("KVM_ENABLE_CAP");
  return true;
}

Expected<DirtyLoggedSlot> DirtyLoggedSlot::Map(int vm_fd, uint32_t slot, uint64_t guest_address,
                                               uint64_t size) {
  DirtyLoggedSlot s;
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return Failed("mmap dirty-logged slot");
  s.host_ = mem;
  s.size_ = size;
  s.slot_ = slot;
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = KVM_MEM_LOG_DIRTY_PAGES;
  region.guest_phys_addr = guest_address;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uintptr_t>(mem);
  if (Ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return Failed("KVM_SET_USER_MEMORY_REGION (dirty log)");
  }
  return s;
}

DirtyLoggedSlot::DirtyLoggedSlot(DirtyLoggedSlot&& other) noexcept
    : host_(std::exchange(other.host_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      slot_(other.slot_) {}

DirtyLoggedSlot::~DirtyLoggedSlot() {
  if (host_ != nullptr) ::munmap(host_, size_);
}

Expected<void> GetDirtyLog(int vm_fd, uint32_t slot, uint64_t* bitmap) {
  kvm_dirty_log log{};
  log.slot = slot;
  log.dirty_bitmap = bitmap;
  if (Ioctl(vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) return Failed("KVM_GET_DIRTY_LOG");
  return {};
}

Expected<void> ClearDirtyLog(int vm_fd, uint32_t slot, uint64_t first_page, uint32_t num_pages,
                             uint64_t* bitmap) {
  kvm_clear_dirty_log clear{};
  clear.slot = slot;
  clear.first_page = first_page;
  clear.num_pages = num_pages;
  clear.dirty_bitmap = bitmap;
  if (Ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0) return Failed("KVM_CLEAR_DIRTY_LOG");
  return {};
}

}  // namespace virt_bench::raw
