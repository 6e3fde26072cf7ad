// FakeMshv's MSHV_ROOT_HVCALL: the hypercalls the backend passes through, each with its ABI
// checks (sizes, reserved fields, the fd it may be issued on) and a model of its effect.
#include <cerrno>
#include <cstring>

#include "mshv_fake.h"

namespace virt::mshv::test {
namespace {

hv_output_get_vp_cpuid_values Regs(uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx) {
  return {eax, ebx, ecx, edx};
}

}  // namespace

std::map<FakeMshv::CpuidKey, hv_output_get_vp_cpuid_values> FakeMshv::DefaultHostCpuid() {
  // An Intel host: basic leaves up to 0xD, Hyper-V leaves up to 0x40000005, extended leaves up
  // to 0x80000008. Leaf 1 ECX shows x2APIC (21), TSC-deadline (24) and hypervisor (31).
  return {
      {{0x0, 0}, Regs(0xD, 0x756E6547, 0x6C65746E, 0x49656E69)},  // GenuineIntel
      {{0x1, 0}, Regs(0x000806F8, 0x00010800, 0x80200000 | (1u << 24) | 0x0209, 0x1F8BFBFF)},
      {{0x4, 0}, Regs(0x00000121, 0x01C0003F, 0x0000003F, 0)},
      {{0x4, 1}, Regs(0x00000122, 0x01C0003F, 0x0000003F, 0)},
      {{0x7, 0}, Regs(1, 0x219C07AB, 0x00000004, 0)},
      {{0x7, 1}, Regs(0x00000010, 0, 0, 0)},
      {{0xB, 0}, Regs(1, 1, 0x100, 0)},
      {{0xB, 1}, Regs(0, 1, 0x201, 0)},
      {{0xD, 0}, Regs(7, 0x340, 0x340, 0)},
      {{0xD, 1}, Regs(1, 0, 0, 0)},
      {{0xD, 2}, Regs(0x100, 0x240, 0, 0)},
      {{0x40000000, 0}, Regs(0x40000005, 0x7263694D, 0x666F736F, 0x76482074)},  // Microsoft Hv
      {{0x40000001, 0}, Regs(0x31237648, 0, 0, 0)},                              // Hv#1
      {{0x80000000, 0}, Regs(0x80000008, 0, 0, 0)},
      {{0x80000001, 0}, Regs(0, 0, 0x00000121, 0x2C100800)},
      {{0x80000008, 0}, Regs(0x00003030, 0, 0, 0)},
  };
}

Status FakeMshv::RootHvcall(int fd, mshv_root_hvcall* call) {
  std::lock_guard lock(mu_);
  int err = 0;
  uint16_t status = 0;
  HvcallRecord rec{fd, *call, {}};
  const auto* in = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(call->in_ptr));
  if (in != nullptr) rec.input.assign(in, in + call->in_sz);
  hvcalls_.push_back(rec);
  if (ShouldFail("RootHvcall", &err, &status)) {
    call->status = status;
    return Error::Errno("MSHV_ROOT_HVCALL", err);
  }
  // mshv_ioctl_passthru_hvcall(): status must be 0 going in, in_sz at least the partition id.
  if (call->status != 0) Violation("mshv_root_hvcall.status not zero on input");
  if (in == nullptr || call->in_sz < 8) Violation("hypercall input shorter than a partition id");
  for (uint8_t b : call->rsvd) {
    if (b != 0) Violation("mshv_root_hvcall.rsvd not zero");
  }
  uint64_t partition_id = ~uint64_t{0};
  if (rec.input.size() >= 8) std::memcpy(&partition_id, rec.input.data(), 8);
  if (partition_id != 0) Violation("partition id not left 0 for the kernel");
  int partition_fd = -1;
  Partition* p = PartitionOf(fd, &partition_fd);
  if (p == nullptr) return Error::Errno("MSHV_ROOT_HVCALL", EBADF);
  Status done = Ok();
  switch (call->code) {
    case HVCALL_ASSERT_VIRTUAL_INTERRUPT:
      if (!partitions_.count(fd)) Violation("ASSERT_VIRTUAL_INTERRUPT not on a partition fd");
      if (call->in_sz != 32 || call->reps != 0 || call->out_sz != 0) Violation("ASSERT sizes");
      break;
    case HVCALL_GET_VP_REGISTERS:
    case HVCALL_SET_VP_REGISTERS: {
      auto vp = vps_.find(fd);
      if (vp == vps_.end()) {
        Violation("register hypercall not on a vp fd");
        return Error::Errno("MSHV_ROOT_HVCALL", EBADF);
      }
      done = RegisterHvcall(vp->second, call, rec.input);
      break;
    }
    case HVCALL_INSTALL_INTERCEPT:
      done = InstallInterceptHvcall(*p, call, rec.input);
      break;
    case HVCALL_GET_VP_CPUID_VALUES:
      done = GetVpCpuidValuesHvcall(partition_fd, call, rec.input);
      break;
    case HVCALL_GET_PARTITION_PROPERTY:
    case HVCALL_SET_PARTITION_PROPERTY:
      done = PropertyHvcall(fd, *p, call, rec.input);
      break;
    default:
      Violation("unexpected hypercall " + Num(call->code));
  }
  if (done) call->status = HV_STATUS_SUCCESS;
  return done;
}

Status FakeMshv::RegisterHvcall(Vp& vp, mshv_root_hvcall* call, const std::vector<uint8_t>& in) {
  hv_input_get_vp_registers header{};
  if (in.size() >= sizeof header) std::memcpy(&header, in.data(), sizeof header);
  if (header.vpindex != vp.index || header.input_vtl != 0 || header.rsvd_z8 != 0 ||
      header.rsvd_z16 != 0) {
    Violation("register hypercall header");
  }
  const size_t n = call->reps;
  if (call->code == HVCALL_GET_VP_REGISTERS) {
    if (n == 0 || call->in_sz != 16 + 4 * n || call->out_sz != 16 * n) Violation("GET sizes");
    auto* out = reinterpret_cast<hv_register_value*>(static_cast<uintptr_t>(call->out_ptr));
    for (size_t i = 0; i < n && 16 + 4 * i + 4 <= in.size(); ++i) {
      uint32_t name;
      std::memcpy(&name, in.data() + 16 + 4 * i, 4);
      out[i] = vp.registers[name];
    }
    return Ok();
  }
  if (n == 0 || call->in_sz != 16 + 32 * n || call->out_sz != 0) Violation("SET sizes");
  for (size_t i = 0; i < n && 16 + 32 * (i + 1) <= in.size(); ++i) {
    hv_register_assoc a;
    std::memcpy(&a, in.data() + 16 + 32 * i, sizeof a);
    if (a.reserved1 != 0 || a.reserved2 != 0) Violation("hv_register_assoc reserved");
    vp.registers[a.name] = a.value;
  }
  return Ok();
}

Status FakeMshv::InstallInterceptHvcall(Partition& p, mshv_root_hvcall* call,
                                        const std::vector<uint8_t>& in) {
  if (call->in_sz != 24 || call->reps != 0 || call->out_sz != 0 || call->out_ptr != 0) {
    Violation("INSTALL_INTERCEPT sizes");
  }
  hv_input_install_intercept args{};
  if (in.size() >= sizeof args) std::memcpy(&args, in.data(), sizeof args);
  if (args.access_type != HV_INTERCEPT_ACCESS_MASK_EXECUTE ||
      args.intercept_type != HV_INTERCEPT_TYPE_X64_CPUID || (args.intercept_parameter >> 32) != 0) {
    Violation("INSTALL_INTERCEPT of something but a CPUID leaf");
  }
  const auto leaf = static_cast<uint32_t>(args.intercept_parameter);
  if (!p.cpuid_intercepts.insert(leaf).second) {
    Violation("CPUID intercept of leaf " + Num(leaf) + " installed twice");
  }
  p.intercept_log.push_back(leaf);
  return Ok();
}

Status FakeMshv::GetVpCpuidValuesHvcall(int partition_fd, mshv_root_hvcall* call,
                                        const std::vector<uint8_t>& in) {
  const size_t n = call->reps;
  if (n == 0 || call->in_sz != 24 + 24 * n || call->out_sz != 16 * n || call->out_ptr == 0) {
    Violation("GET_VP_CPUID_VALUES sizes");
    return Error::Errno("MSHV_ROOT_HVCALL", EINVAL);
  }
  hv_input_get_vp_cpuid_values header{};
  std::memcpy(&header, in.data(), sizeof header);
  if (header.flags != (HV_GET_VP_CPUID_VALUES_USE_VP_XFEM_XSS |
                       HV_GET_VP_CPUID_VALUES_APPLY_REGISTERED_VALUES) ||
      header.reserved != 0 || header.padding != 0) {
    Violation("GET_VP_CPUID_VALUES header");
  }
  if (VpOf(partition_fd, header.vp_index) == nullptr) {
    call->status = HV_STATUS_INVALID_VP_INDEX;  // the hypervisor knows no such VP
    return Error::Errno("MSHV_ROOT_HVCALL", EINVAL);
  }
  auto* out =
      reinterpret_cast<hv_output_get_vp_cpuid_values*>(static_cast<uintptr_t>(call->out_ptr));
  for (size_t i = 0; i < n; ++i) {
    hv_cpuid_leaf_info leaf;
    std::memcpy(&leaf, in.data() + 24 + 24 * i, sizeof leaf);
    if (leaf.xfem != 0 || leaf.xss != 0) Violation("xfem/xss given with USE_VP_XFEM_XSS");
    auto found = host_cpuid_.find({leaf.eax, leaf.ecx});
    hv_output_get_vp_cpuid_values v = found == host_cpuid_.end()
                                          ? hv_output_get_vp_cpuid_values{}
                                          : found->second;
    if (leaf.eax == 1) v.ebx = (v.ebx & 0x00FFFFFFu) | (header.vp_index << 24);
    if ((leaf.eax == 0xB || leaf.eax == 0x1F) && found != host_cpuid_.end()) {
      v.edx = header.vp_index;
    }
    out[i] = v;
  }
  return Ok();
}

}  // namespace virt::mshv::test
