// KvmVcpu state parts: each VcpuStatePart to and from its KVM ioctl (PartwiseVcpuState does
// the order, refusals and rollback).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "kvm_vcpu.h"

namespace virt::kvm {
namespace {

constexpr uint32_t kTscMsr = 0x10;
constexpr size_t kLegacyXsaveSize = sizeof(kvm_xsave);  // 4 KiB

constexpr VcpuStatePart kAllParts[] = {
    VcpuStatePart::kCpuid,          VcpuStatePart::kMsrs,    VcpuStatePart::kSpecialRegisters,
    VcpuStatePart::kRegisters,      VcpuStatePart::kXcrs,    VcpuStatePart::kXsave,
    VcpuStatePart::kDebugRegisters, VcpuStatePart::kMpState, VcpuStatePart::kLapic,
    VcpuStatePart::kEvents,         VcpuStatePart::kTsc,
};
// The same without the MP state (a host without KVM_CAP_MP_STATE).
constexpr VcpuStatePart kPartsWithoutMpState[] = {
    VcpuStatePart::kCpuid,     VcpuStatePart::kMsrs,  VcpuStatePart::kSpecialRegisters,
    VcpuStatePart::kRegisters, VcpuStatePart::kXcrs,  VcpuStatePart::kXsave,
    VcpuStatePart::kDebugRegisters, VcpuStatePart::kLapic, VcpuStatePart::kEvents,
    VcpuStatePart::kTsc,
};

VcpuEvents FromKvm(const kvm_vcpu_events& k) {
  VcpuEvents e;
  e.exception.injected = k.exception.injected != 0;
  e.exception.pending = k.exception.pending != 0;
  e.exception.vector = k.exception.nr;
  e.exception.has_error_code = k.exception.has_error_code != 0;
  e.exception.error_code = k.exception.error_code;
  if (k.exception_has_payload) e.exception.payload = k.exception_payload;
  e.interrupt.injected = k.interrupt.injected != 0;
  e.interrupt.vector = k.interrupt.nr;
  e.interrupt.soft = k.interrupt.soft != 0;
  e.interrupt.shadow = k.interrupt.shadow;
  e.nmi.injected = k.nmi.injected != 0;
  e.nmi.pending = k.nmi.pending != 0;
  e.nmi.masked = k.nmi.masked != 0;
  e.smi.smm = k.smi.smm != 0;
  e.smi.pending = k.smi.pending != 0;
  e.smi.inside_nmi = k.smi.smm_inside_nmi != 0;
  e.smi.latched_init = k.smi.latched_init != 0;
  e.sipi_vector = k.sipi_vector;
  e.triple_fault_pending = k.triple_fault.pending != 0;
  return e;
}

Status ToKvm(const VcpuEvents& e, kvm_vcpu_events& k) {
  // Payloads and pending triple faults need KVM capabilities the partition does not enable
  // (KVM_CAP_EXCEPTION_PAYLOAD, KVM_CAP_X86_TRIPLE_FAULT_EVENT); a state holding them would
  // lose them here, so it is refused.
  if (e.exception.payload || e.triple_fault_pending) {
    return Error::Make(ErrorCode::kUnavailable, "KVM_SET_VCPU_EVENTS",
                       "exception payloads and pending triple faults are not enabled");
  }
  k = {};
  k.exception.injected = e.exception.injected;
  k.exception.pending = e.exception.pending;
  k.exception.nr = e.exception.vector;
  k.exception.has_error_code = e.exception.has_error_code;
  k.exception.error_code = e.exception.error_code;
  k.interrupt.injected = e.interrupt.injected;
  k.interrupt.nr = e.interrupt.vector;
  k.interrupt.soft = e.interrupt.soft;
  k.interrupt.shadow = e.interrupt.shadow;
  k.nmi.injected = e.nmi.injected;
  k.nmi.pending = e.nmi.pending;
  k.nmi.masked = e.nmi.masked;
  k.smi.smm = e.smi.smm;
  k.smi.pending = e.smi.pending;
  k.smi.smm_inside_nmi = e.smi.inside_nmi;
  k.smi.latched_init = e.smi.latched_init;
  k.sipi_vector = e.sipi_vector;
  k.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
            KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
  return Ok();
}

// The value a part is saved into: the one already there (a vector's storage reused) or a new
// one. A failed save leaves it half written; PartwiseVcpuState then empties the whole state.
template <typename T>
T& Reused(std::optional<T>& part) {
  return part ? *part : part.emplace();
}

// A one-MSR kvm_msrs for the TSC part: the 8-byte header (nmsrs = 1), then the entry's index
// word and its value.
class TscMsr {
 public:
  explicit TscMsr(uint64_t value = 0) : words_{1, kTscMsr, value} {}
  kvm_msrs* msrs() { return reinterpret_cast<kvm_msrs*>(words_); }
  uint64_t value() const { return words_[2]; }

 private:
  static_assert(sizeof(kvm_msrs) == 8 && sizeof(kvm_msr_entry) == 16 &&
                offsetof(kvm_msr_entry, data) == 8);
  uint64_t words_[3];  // nmsrs | pad << 32, index | reserved << 32, data (little-endian)
};

[[gnu::cold]] Error TscRefused(const char* op) {
  return Error::Make(ErrorCode::kInvalidArgument, op, "MSR 0x10 refused");
}

Error Invalid(const char* op, std::string detail) {
  return Error::Make(ErrorCode::kInvalidArgument, op, std::move(detail));
}

}  // namespace

std::span<const VcpuStatePart> KvmVcpu::supported_parts() const {
  if (config_.mp_state) return kAllParts;
  return kPartsWithoutMpState;
}

Status KvmVcpu::SaveMsrs(VcpuState& into) {
  // KVM_GET_MSRS stops at the first MSR this vCPU refuses (a feature MSR of a feature it does
  // not have); that one leaves the vCPU's list for good and the call is made again.
  // The request keeps its indices from one save to the next (KVM writes back only the values).
  for (;;) {
    kvm_msrs* k = msr_request_.Get(msrs_.size());
    if (!msr_request_filled_) {
      for (size_t i = 0; i < msrs_.size(); ++i) k->entries[i] = {msrs_[i], 0, 0};
      msr_request_filled_ = true;
    }
    auto done = msrs_.empty() ? Result<int>(0) : ioctl_->GetMsrs(fd_.get(), k);
    if (!done) return done.error();
    const auto n = static_cast<size_t>(*done);
    if (n < msrs_.size()) {
      msrs_.erase(msrs_.begin() + static_cast<std::ptrdiff_t>(n));
      msr_request_filled_ = false;
      continue;
    }
    std::vector<MsrEntry>& out = Reused(into.msrs);
    out.resize(n);
    CopyMsrsFromKvm(*k, n, out.data());
    return Ok();
  }
}

Status KvmVcpu::SaveXsave(VcpuState& into) {
  const size_t size = config_.xsave2_size ? config_.xsave2_size : kLegacyXsaveSize;
  // KVM writes the area straight into the part's bytes (operator new's storage is aligned for
  // kvm_xsave's 32-bit words); a reused part of this size is not cleared first.
  std::vector<uint8_t>& bytes = Reused(into.xsave);
  bytes.resize(size);
  auto* x = reinterpret_cast<kvm_xsave*>(bytes.data());
  return config_.xsave2_size ? ioctl_->GetXsave2(fd_.get(), x) : ioctl_->GetXsave(fd_.get(), x);
}

Status KvmVcpu::LoadXsave(const std::vector<uint8_t>& bytes) {
  const size_t size = config_.xsave2_size ? config_.xsave2_size : kLegacyXsaveSize;
  if (bytes.size() != size) {
    return Invalid("KVM_SET_XSAVE", "an XSAVE area of " + std::to_string(bytes.size()) +
                                        " bytes; this KVM takes " + std::to_string(size));
  }
  // KVM reads `size` bytes from a kvm_xsave (an array of 32-bit words). A vector's storage comes
  // from operator new and is aligned for that; copy only if some allocator gave less.
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(kvm_xsave) == 0) {
    return ioctl_->SetXsave(fd_.get(), *reinterpret_cast<const kvm_xsave*>(bytes.data()));
  }
  std::vector<uint32_t> aligned((size + 3) / 4);
  std::memcpy(aligned.data(), bytes.data(), size);
  return ioctl_->SetXsave(fd_.get(), *reinterpret_cast<const kvm_xsave*>(aligned.data()));
}

inline Status KvmVcpu::SaveOne(VcpuStatePart part, VcpuState& into) {
  switch (part) {
    case VcpuStatePart::kCpuid: {
      KvmCpuidScratch::Lease lease = cpuid_scratch_.Acquire();
      if (Status s = ioctl_->GetCpuid2(fd_.get(), lease.buffer()); !s) return s;
      into.cpuid = lease.Converted();  // copy-assigned: a present part keeps its storage
      return Ok();
    }
    case VcpuStatePart::kMsrs:
      return SaveMsrs(into);
    case VcpuStatePart::kSpecialRegisters:
      return ReadSpecialRegisters(Reused(into.special_registers));
    case VcpuStatePart::kRegisters:
      return ReadRegisters(Reused(into.registers));
    case VcpuStatePart::kXcrs: {
      kvm_xcrs k;  // KVM writes all of it; the count is zeroed for a seam that writes nothing
      k.nr_xcrs = 0;
      if (Status s = ioctl_->GetXcrs(fd_.get(), &k); !s) return s;
      std::vector<XcrEntry>& xcrs = Reused(into.xcrs);
      xcrs.clear();
      for (uint32_t i = 0; i < k.nr_xcrs && i < KVM_MAX_XCRS; ++i) {
        xcrs.push_back({k.xcrs[i].xcr, k.xcrs[i].value});
      }
      return Ok();
    }
    case VcpuStatePart::kXsave:
      return SaveXsave(into);
    case VcpuStatePart::kDebugRegisters: {
      kvm_debugregs k{};
      if (Status s = ioctl_->GetDebugRegs(fd_.get(), &k); !s) return s;
      into.debug_registers = DebugRegisters{{k.db[0], k.db[1], k.db[2], k.db[3]}, k.dr6, k.dr7};
      return Ok();
    }
    case VcpuStatePart::kMpState: {
      auto m = GetMpState();
      if (!m) return m.error();
      into.mp_state = *m;
      return Ok();
    }
    case VcpuStatePart::kLapic: {
      // KVM writes the register page straight into the part's bytes (kvm_lapic_state is
      // char[1024]: any alignment will do).
      static_assert(sizeof(kvm_lapic_state) == 1024 && alignof(kvm_lapic_state) == 1);
      std::vector<uint8_t>& page = Reused(into.lapic);
      page.resize(sizeof(kvm_lapic_state));
      return ioctl_->GetLapic(fd_.get(), reinterpret_cast<kvm_lapic_state*>(page.data()));
    }
    case VcpuStatePart::kEvents: {
      kvm_vcpu_events k{};
      if (Status s = ioctl_->GetVcpuEvents(fd_.get(), &k); !s) return s;
      into.events = FromKvm(k);
      return Ok();
    }
    case VcpuStatePart::kTsc: {
      TscMsr k;
      auto done = ioctl_->GetMsrs(fd_.get(), k.msrs());
      if (!done) return done.error();
      if (*done != 1) return TscRefused("KVM_GET_MSRS");
      into.tsc = k.value();
      return Ok();
    }
  }
  return Invalid("KvmVcpu::SaveState", "unknown part");
}

inline Status KvmVcpu::LoadOne(VcpuStatePart part, const VcpuState& from) {
  switch (part) {
    case VcpuStatePart::kCpuid:
      return LoadCpuid(*from.cpuid);
    case VcpuStatePart::kMsrs:
      return SetMsrs(*from.msrs);
    case VcpuStatePart::kSpecialRegisters:
      return SetSpecialRegisters(*from.special_registers);
    case VcpuStatePart::kRegisters:
      return SetRegisters(*from.registers);
    case VcpuStatePart::kXcrs: {
      if (from.xcrs->size() > KVM_MAX_XCRS) {
        return Invalid("KVM_SET_XCRS", std::to_string(from.xcrs->size()) + " XCRs, at most 16");
      }
      kvm_xcrs k{};
      k.nr_xcrs = static_cast<uint32_t>(from.xcrs->size());
      for (size_t i = 0; i < from.xcrs->size(); ++i) {
        k.xcrs[i].xcr = (*from.xcrs)[i].index;
        k.xcrs[i].value = (*from.xcrs)[i].value;
      }
      return ioctl_->SetXcrs(fd_.get(), k);
    }
    case VcpuStatePart::kXsave:
      return LoadXsave(*from.xsave);
    case VcpuStatePart::kDebugRegisters: {
      kvm_debugregs k{};
      for (int i = 0; i < 4; ++i) k.db[i] = from.debug_registers->db[static_cast<size_t>(i)];
      k.dr6 = from.debug_registers->dr6;
      k.dr7 = from.debug_registers->dr7;
      return ioctl_->SetDebugRegs(fd_.get(), k);
    }
    case VcpuStatePart::kMpState:
      return SetMpState(*from.mp_state);
    case VcpuStatePart::kLapic: {
      if (from.lapic->size() != sizeof(kvm_lapic_state)) {
        return Invalid("KVM_SET_LAPIC", "a LAPIC page of " + std::to_string(from.lapic->size()) +
                                            " bytes; KVM's is 1024");
      }
      return ioctl_->SetLapic(fd_.get(),
                              *reinterpret_cast<const kvm_lapic_state*>(from.lapic->data()));
    }
    case VcpuStatePart::kEvents: {
      kvm_vcpu_events k;
      if (Status s = ToKvm(*from.events, k); !s) return s;
      return ioctl_->SetVcpuEvents(fd_.get(), k);
    }
    case VcpuStatePart::kTsc: {
      TscMsr k(*from.tsc);
      auto done = ioctl_->SetMsrs(fd_.get(), *k.msrs());
      if (!done) return done.error();
      if (*done != 1) return TscRefused("KVM_SET_MSRS");
      return Ok();
    }
  }
  return Invalid("KvmVcpu::RestoreState", "unknown part");
}

Status KvmVcpu::SavePart(VcpuStatePart part, VcpuState& into) { return SaveOne(part, into); }

Status KvmVcpu::LoadPart(VcpuStatePart part, const VcpuState& from) { return LoadOne(part, from); }

Status KvmVcpu::SaveParts(std::span<const VcpuStatePart> parts, VcpuState& into, size_t& failed) {
  for (size_t i = 0; i < parts.size(); ++i) {
    if (Status s = SaveOne(parts[i], into); !s) [[unlikely]] {
      failed = i;
      return s;
    }
  }
  return Ok();
}

Status KvmVcpu::LoadParts(std::span<const VcpuStatePart> parts, const VcpuState& from,
                          size_t& failed) {
  for (size_t i = 0; i < parts.size(); ++i) {
    if (Status s = LoadOne(parts[i], from); !s) [[unlikely]] {
      failed = i;
      return s;
    }
  }
  return Ok();
}

}  // namespace virt::kvm
