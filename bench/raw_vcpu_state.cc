// raw_vcpu_state: the library's vCPU save/restore ioctl sequence, made directly.
#include "raw_vcpu_state.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace virt_bench::raw {
namespace {

// The variable-length arguments' fixed headers as the kernel lays them out (see raw_kvm.cc: in
// C++, Debian 12's <linux/kvm.h> gives the flexible-array structs the wrong size), and the
// ioctl numbers built from them.
struct Header8 {
  uint32_t n;
  uint32_t pad;
};
struct XsaveArea {
  uint32_t region[1024];
};
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, uint32_t);
constexpr unsigned long kGetMsrFeatureIndexList = _IOWR(KVMIO, 0x0a, uint32_t);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, Header8);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, Header8);
constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, Header8);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Header8);
constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, XsaveArea);
constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, XsaveArea);
constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, XsaveArea);
static_assert(kGetMsrIndexList == 0xc004ae02 && kGetMsrFeatureIndexList == 0xc004ae0a);
static_assert(kGetMsrs == 0xc008ae88 && kSetMsrs == 0x4008ae89);
static_assert(kGetCpuid2 == 0xc008ae91 && kSetCpuid2 == 0x4008ae90);
static_assert(kGetXsave == 0x9000aea4 && kSetXsave == 0x5000aea5 && kGetXsave2 == 0x9000aecf);
static_assert(sizeof(kvm_msr_entry) == 16 && sizeof(kvm_cpuid_entry2) == 40);

constexpr uint32_t kTscMsr = 0x10;
constexpr uint32_t kCpuidEntries = 256;  // the library's buffer (kMaxCpuidEntries)

std::unexpected<std::string> Failed(const char* what) {
  return std::unexpected(std::string(what) + ": " + std::strerror(errno));
}

int Ioctl(int fd, unsigned long request, auto arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

Expected<std::vector<uint32_t>> MsrList(int kvm_fd, unsigned long request, const char* name) {
  for (uint32_t capacity = 256; capacity <= 65536; capacity *= 4) {
    std::vector<uint32_t> buf(1 + capacity);
    buf[0] = capacity;
    if (Ioctl(kvm_fd, request, buf.data()) == 0) {
      return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + buf[0]);
    }
    if (errno != E2BIG) return Failed(name);
  }
  return Failed(name);
}

// A kvm_msrs: the header, then `n` entries (8-byte aligned: made of uint64_t).
std::vector<uint64_t> MsrBuffer(size_t n) { return std::vector<uint64_t>(1 + 2 * n); }
Header8* MsrHeader(std::vector<uint64_t>& b) { return reinterpret_cast<Header8*>(b.data()); }
kvm_msr_entry* MsrEntries(std::vector<uint64_t>& b) {
  return reinterpret_cast<kvm_msr_entry*>(b.data() + 1);
}

}  // namespace

Expected<VcpuStateLayout> VcpuStateLayout::Probe(const System& system, int vm_fd, int vcpu_fd) {
  VcpuStateLayout layout;
  auto msrs = MsrList(system.kvm.get(), kGetMsrIndexList, "KVM_GET_MSR_INDEX_LIST");
  if (!msrs) return std::unexpected(msrs.error());
  auto features =
      MsrList(system.kvm.get(), kGetMsrFeatureIndexList, "KVM_GET_MSR_FEATURE_INDEX_LIST");
  if (!features) return std::unexpected(features.error());
  for (const auto* list : {&*msrs, &*features}) {
    for (uint32_t index : *list) {
      if (index != kTscMsr &&
          std::find(layout.msrs.begin(), layout.msrs.end(), index) == layout.msrs.end()) {
        layout.msrs.push_back(index);
      }
    }
  }
  // KVM_GET_MSRS stops at the first MSR it refuses: drop that one and ask again.
  for (;;) {
    std::vector<uint64_t> buf = MsrBuffer(layout.msrs.size());
    MsrHeader(buf)->n = static_cast<uint32_t>(layout.msrs.size());
    for (size_t i = 0; i < layout.msrs.size(); ++i) MsrEntries(buf)[i].index = layout.msrs[i];
    const int done = layout.msrs.empty() ? 0 : Ioctl(vcpu_fd, kGetMsrs, buf.data());
    if (done < 0) return Failed("KVM_GET_MSRS");
    if (static_cast<size_t>(done) == layout.msrs.size()) break;
    layout.msrs.erase(layout.msrs.begin() + done);
  }
  const int xsave2 = ::ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
  if (xsave2 >= static_cast<int>(sizeof(XsaveArea))) {
    layout.xsave2_size = static_cast<uint32_t>(xsave2);
  }
  layout.mp_state = ::ioctl(system.kvm.get(), KVM_CHECK_EXTENSION, KVM_CAP_MP_STATE) > 0;
  return layout;
}

struct VcpuStateBuffers::Kvm {
  std::vector<uint64_t> cpuid;      // Header8 + kCpuidEntries entries
  std::vector<uint64_t> cpuid_now;  // read back at restore
  std::vector<uint64_t> msrs;
  std::vector<uint64_t> tsc = MsrBuffer(1);
  kvm_sregs sregs{};
  kvm_regs regs{};
  kvm_xcrs xcrs{};
  std::vector<uint32_t> xsave;
  kvm_debugregs debugregs{};
  kvm_mp_state mp_state{};
  kvm_lapic_state lapic{};
  kvm_vcpu_events events{};
};

VcpuStateBuffers::VcpuStateBuffers(const VcpuStateLayout& layout)
    : layout_(layout), kvm_(std::make_unique<Kvm>()) {
  const size_t cpuid_words = (8 + kCpuidEntries * sizeof(kvm_cpuid_entry2)) / 8;
  kvm_->cpuid.resize(cpuid_words);
  kvm_->cpuid_now.resize(cpuid_words);
  kvm_->msrs = MsrBuffer(layout.msrs.size());
  // The indices once: KVM_GET_MSRS writes back only the values, KVM_SET_MSRS reads the same.
  MsrHeader(kvm_->msrs)->n = static_cast<uint32_t>(layout.msrs.size());
  for (size_t i = 0; i < layout.msrs.size(); ++i) MsrEntries(kvm_->msrs)[i].index = layout.msrs[i];
  kvm_->xsave.resize((layout.xsave2_size ? layout.xsave2_size : sizeof(XsaveArea)) / 4);
}

VcpuStateBuffers::~VcpuStateBuffers() = default;

Expected<void> VcpuStateBuffers::Save(int fd) {
  Kvm& k = *kvm_;
  reinterpret_cast<Header8*>(k.cpuid.data())->n = kCpuidEntries;
  if (Ioctl(fd, kGetCpuid2, k.cpuid.data()) < 0) return Failed("KVM_GET_CPUID2");
  if (!layout_.msrs.empty() &&
      Ioctl(fd, kGetMsrs, k.msrs.data()) != static_cast<int>(layout_.msrs.size())) {
    return Failed("KVM_GET_MSRS");
  }
  if (Ioctl(fd, KVM_GET_SREGS, &k.sregs) < 0) return Failed("KVM_GET_SREGS");
  if (Ioctl(fd, KVM_GET_REGS, &k.regs) < 0) return Failed("KVM_GET_REGS");
  if (Ioctl(fd, KVM_GET_XCRS, &k.xcrs) < 0) return Failed("KVM_GET_XCRS");
  if (Ioctl(fd, layout_.xsave2_size ? kGetXsave2 : kGetXsave, k.xsave.data()) < 0) {
    return Failed("KVM_GET_XSAVE");
  }
  if (Ioctl(fd, KVM_GET_DEBUGREGS, &k.debugregs) < 0) return Failed("KVM_GET_DEBUGREGS");
  if (layout_.mp_state && Ioctl(fd, KVM_GET_MP_STATE, &k.mp_state) < 0) {
    return Failed("KVM_GET_MP_STATE");
  }
  if (Ioctl(fd, KVM_GET_LAPIC, &k.lapic) < 0) return Failed("KVM_GET_LAPIC");
  if (Ioctl(fd, KVM_GET_VCPU_EVENTS, &k.events) < 0) return Failed("KVM_GET_VCPU_EVENTS");
  MsrHeader(k.tsc)->n = 1;
  MsrEntries(k.tsc)[0].index = kTscMsr;
  if (Ioctl(fd, kGetMsrs, k.tsc.data()) != 1) return Failed("KVM_GET_MSRS (TSC)");
  return {};
}

Expected<void> VcpuStateBuffers::Restore(int fd) {
  Kvm& k = *kvm_;
  reinterpret_cast<Header8*>(k.cpuid_now.data())->n = kCpuidEntries;
  if (Ioctl(fd, kGetCpuid2, k.cpuid_now.data()) < 0) return Failed("KVM_GET_CPUID2");
  const uint32_t nent = reinterpret_cast<const Header8*>(k.cpuid.data())->n;
  if (reinterpret_cast<const Header8*>(k.cpuid_now.data())->n != nent ||
      std::memcmp(k.cpuid.data() + 1, k.cpuid_now.data() + 1, nent * sizeof(kvm_cpuid_entry2)) !=
          0) {
    if (Ioctl(fd, kSetCpuid2, k.cpuid.data()) < 0) return Failed("KVM_SET_CPUID2");
  }
  if (!layout_.msrs.empty() &&
      Ioctl(fd, kSetMsrs, k.msrs.data()) != static_cast<int>(layout_.msrs.size())) {
    return Failed("KVM_SET_MSRS");
  }
  if (Ioctl(fd, KVM_SET_SREGS, &k.sregs) < 0) return Failed("KVM_SET_SREGS");
  if (Ioctl(fd, KVM_SET_REGS, &k.regs) < 0) return Failed("KVM_SET_REGS");
  if (Ioctl(fd, KVM_SET_XCRS, &k.xcrs) < 0) return Failed("KVM_SET_XCRS");
  if (Ioctl(fd, kSetXsave, k.xsave.data()) < 0) return Failed("KVM_SET_XSAVE");
  if (Ioctl(fd, KVM_SET_DEBUGREGS, &k.debugregs) < 0) return Failed("KVM_SET_DEBUGREGS");
  if (layout_.mp_state && Ioctl(fd, KVM_SET_MP_STATE, &k.mp_state) < 0) {
    return Failed("KVM_SET_MP_STATE");
  }
  if (Ioctl(fd, KVM_SET_LAPIC, &k.lapic) < 0) return Failed("KVM_SET_LAPIC");
  k.events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                   KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
  if (Ioctl(fd, KVM_SET_VCPU_EVENTS, &k.events) < 0) return Failed("KVM_SET_VCPU_EVENTS");
  if (Ioctl(fd, kSetMsrs, k.tsc.data()) != 1) return Failed("KVM_SET_MSRS (TSC)");
  return {};
}

}  // namespace virt_bench::raw
