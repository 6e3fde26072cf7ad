// MshvVcpuCpuid: GetCpuid/SetCpuid and completing CPUID intercepts from the vCPU's table.
#include "mshv_vcpu_cpuid.h"

#include <cstdio>
#include <utility>
#include <vector>

#include "mshv_cpuid.h"
#include "mshv_hvcall.h"

namespace virt::mshv {

MshvVcpuCpuid::MshvVcpuCpuid(std::shared_ptr<MshvIoctl> ioctl, int vp_fd, uint32_t vp_index,
                             std::shared_ptr<MshvCpuidIntercepts> intercepts)
    : ioctl_(std::move(ioctl)),
      vp_fd_(vp_fd),
      vp_index_(vp_index),
      intercepts_(std::move(intercepts)) {}

Result<Cpuid> MshvVcpuCpuid::GetCpuid() {
  if (table_) return *table_;
  return ReadVpCpuid(*ioctl_, vp_fd_, vp_index_);
}

Status MshvVcpuCpuid::SetCpuid(const Cpuid& cpuid) {
  if (entered_) {
    return Error::Make(ErrorCode::kFailedPrecondition, "MshvVcpuCpuid::SetCpuid",
                       "vCPU " + std::to_string(vp_index_) + " has run already");
  }
  std::vector<uint32_t> leaves;
  for (const CpuidEntry& e : cpuid.entries()) {
    if ((e.flags & ~kCpuidIndexSignificant) != 0) {
      char buf[80];
      std::snprintf(buf, sizeof buf, "CPUID leaf 0x%x.%u has unknown flags 0x%x", e.function,
                    e.index, e.flags);
      return Error::Make(ErrorCode::kInvalidArgument, "MshvVcpuCpuid::SetCpuid", buf);
    }
    if (leaves.empty() || leaves.back() != e.function) leaves.push_back(e.function);
  }
  if (Status s = intercepts_->Install(*ioctl_, vp_fd_, leaves); !s) return s;
  table_ = cpuid;
  return Ok();
}

Status MshvVcpuCpuid::Complete(const CpuidIntercept& c) {
  uint64_t rax = c.default_rax, rbx = c.default_rbx, rcx = c.default_rcx, rdx = c.default_rdx;
  if (table_) {
    if (const CpuidEntry* e = table_->Find(c.function, c.index)) {
      rax = e->eax, rbx = e->ebx, rcx = e->ecx, rdx = e->edx;
    }
  }
  const hv_register_assoc assocs[] = {
      Assoc(HV_X64_REGISTER_RAX, static_cast<uint32_t>(rax)),
      Assoc(HV_X64_REGISTER_RBX, static_cast<uint32_t>(rbx)),
      Assoc(HV_X64_REGISTER_RCX, static_cast<uint32_t>(rcx)),
      Assoc(HV_X64_REGISTER_RDX, static_cast<uint32_t>(rdx)),
      Assoc(HV_X64_REGISTER_RIP, c.rip + c.instruction_length),
  };
  return SetVpRegisters(*ioctl_, vp_fd_, vp_index_, assocs);
}

}  // namespace virt::mshv
