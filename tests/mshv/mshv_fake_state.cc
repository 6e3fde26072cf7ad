// FakeMshv's state calls: MSHV_GET/SET_VP_STATE (XSAVE, LAPIC), partition properties through
// MSHV_ROOT_HVCALL, and MSHV_GET_GPAP_ACCESS_BITMAP over the partition's dirty pages.
#include <cerrno>
#include <cstring>

#include "mshv_fake.h"

namespace virt::mshv::test {
namespace {

constexpr uint16_t kHvStatusInvalidParameter = 0x0005;  // HV_STATUS_INVALID_PARAMETER

// mshv_vp_ioctl_get_set_state(): rsvd 0, buf_sz a non-zero page multiple, buf_ptr page aligned.
bool BufferOk(const mshv_get_set_vp_state& s) {
  return s.rsvd[0] == 0 && s.rsvd[1] == 0 && s.rsvd[2] == 0 && s.buf_sz != 0 &&
         s.buf_sz % 4096 == 0 && s.buf_ptr != 0 && s.buf_ptr % 4096 == 0;
}

}  // namespace

Status FakeMshv::GetVpState(int vp_fd, mshv_get_set_vp_state* state) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("GetVpState", &err)) return Error::Errno("MSHV_GET_VP_STATE", err);
  auto it = vps_.find(vp_fd);
  if (it == vps_.end()) return Error::Errno("MSHV_GET_VP_STATE", EBADF);
  Vp& vp = it->second;
  const bool lapic_partition =
      partitions_[vp.partition_fd].pt_flags & (uint64_t{1} << MSHV_PT_BIT_LAPIC);
  std::vector<uint8_t>* data = state->type == MSHV_VP_STATE_XSAVE   ? &vp.xsave
                               : state->type == MSHV_VP_STATE_LAPIC ? &vp.lapic
                                                                    : nullptr;
  if (data == nullptr || !BufferOk(*state) ||
      (state->type == MSHV_VP_STATE_LAPIC && !lapic_partition)) {
    Violation("MSHV_GET_VP_STATE arguments");
    return Error::Errno("MSHV_GET_VP_STATE", EINVAL);
  }
  const uint32_t buffer = state->buf_sz;
  state->buf_sz = static_cast<uint32_t>(data->size());  // the kernel reports the state's size
  if (data->size() > buffer) return Error::Errno("MSHV_GET_VP_STATE", EINVAL);
  std::memcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(state->buf_ptr)), data->data(),
              data->size());
  return Ok();
}

Status FakeMshv::SetVpState(int vp_fd, const mshv_get_set_vp_state& state) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("SetVpState", &err)) return Error::Errno("MSHV_SET_VP_STATE", err);
  auto it = vps_.find(vp_fd);
  if (it == vps_.end()) return Error::Errno("MSHV_SET_VP_STATE", EBADF);
  Vp& vp = it->second;
  const bool lapic_partition =
      partitions_[vp.partition_fd].pt_flags & (uint64_t{1} << MSHV_PT_BIT_LAPIC);
  std::vector<uint8_t>* data = state.type == MSHV_VP_STATE_XSAVE   ? &vp.xsave
                               : state.type == MSHV_VP_STATE_LAPIC ? &vp.lapic
                                                                   : nullptr;
  if (data == nullptr || !BufferOk(state) ||
      (state.type == MSHV_VP_STATE_LAPIC && !lapic_partition)) {
    Violation("MSHV_SET_VP_STATE arguments");
    return Error::Errno("MSHV_SET_VP_STATE", EINVAL);
  }
  if (data->size() > state.buf_sz) return Error::Errno("MSHV_SET_VP_STATE", EINVAL);
  std::memcpy(data->data(), reinterpret_cast<const void*>(static_cast<uintptr_t>(state.buf_ptr)),
              data->size());
  return Ok();
}

Status FakeMshv::PropertyHvcall(int fd, Partition& p, mshv_root_hvcall* call,
                                const std::vector<uint8_t>& in) {
  if (call->code == HVCALL_GET_PARTITION_PROPERTY) {
    if (call->in_sz != 16 || call->reps != 0 || call->out_sz != 8 || call->out_ptr == 0) {
      Violation("GET_PARTITION_PROPERTY sizes");
      return Error::Errno("MSHV_ROOT_HVCALL", EINVAL);
    }
    hv_input_get_partition_property args{};
    std::memcpy(&args, in.data(), sizeof args);
    if (args.padding != 0) Violation("GET_PARTITION_PROPERTY padding");
    const uint64_t value = p.properties[args.property_code];
    std::memcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(call->out_ptr)), &value, 8);
    return Ok();
  }
  // An asynchronous hypercall: mshv_ioctl_passthru_hvcall() takes it from a partition fd only.
  if (!partitions_.count(fd)) {
    Violation("SET_PARTITION_PROPERTY not on a partition fd");
    return Error::Errno("MSHV_ROOT_HVCALL", EINVAL);
  }
  if (call->in_sz != 24 || call->reps != 0 || call->out_sz != 0 || call->out_ptr != 0) {
    Violation("SET_PARTITION_PROPERTY sizes");
    return Error::Errno("MSHV_ROOT_HVCALL", EINVAL);
  }
  hv_input_set_partition_property args{};
  std::memcpy(&args, in.data(), sizeof args);
  if (args.padding != 0) Violation("SET_PARTITION_PROPERTY padding");
  switch (args.property_code) {
    case HV_PARTITION_PROPERTY_REFERENCE_TIME:
      if (p.properties[HV_PARTITION_PROPERTY_TIME_FREEZE] != 1) {
        Violation("REFERENCE_TIME written while the time runs");
        call->status = kHvStatusInvalidParameter;
        return Error::Errno("MSHV_ROOT_HVCALL", EINVAL);
      }
      break;
    case HV_PARTITION_PROPERTY_TIME_FREEZE:
    case HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING:
      if (args.property_value > 1) {
        Violation("boolean property set to " + std::to_string(args.property_value));
      }
      break;
    default:
      Violation("unexpected partition property " + std::to_string(args.property_code));
  }
  p.properties[args.property_code] = args.property_value;
  p.property_writes.emplace_back(args.property_code, args.property_value);
  return Ok();
}

Status FakeMshv::GetGpapAccessBitmap(int partition_fd, mshv_gpap_access_bitmap* args) {
  std::lock_guard lock(mu_);
  int err = 0;
  if (ShouldFail("GetGpapAccessBitmap", &err)) {
    return Error::Errno("MSHV_GET_GPAP_ACCESS_BITMAP", err);
  }
  auto it = partitions_.find(partition_fd);
  if (it == partitions_.end()) return Error::Errno("MSHV_GET_GPAP_ACCESS_BITMAP", EBADF);
  Partition& p = it->second;
  p.bitmap_reads.push_back(*args);
  // mshv_partition_ioctl_get_gpap_access_bitmap(): known type and op, rsvd 0, pages, a buffer.
  bool rsvd_zero = true;
  for (uint8_t b : args->rsvd) rsvd_zero = rsvd_zero && b == 0;
  if (args->access_type > MSHV_GPAP_ACCESS_TYPE_DIRTY ||
      args->access_op > MSHV_GPAP_ACCESS_OP_SET ||
      !rsvd_zero || args->page_count == 0 || args->bitmap_ptr == 0) {
    Violation("MSHV_GET_GPAP_ACCESS_BITMAP arguments");
    return Error::Errno("MSHV_GET_GPAP_ACCESS_BITMAP", EINVAL);
  }
  if (p.properties[HV_PARTITION_PROPERTY_GPA_PAGE_ACCESS_TRACKING] != 1) {
    Violation("dirty bits read without GPA_PAGE_ACCESS_TRACKING");
    return Error::Errno("MSHV_GET_GPAP_ACCESS_BITMAP", EINVAL);
  }
  bool mapped = false;
  for (auto& [pfn, r] : p.regions) {
    mapped = mapped || (args->gpap_base >= pfn &&
                        args->gpap_base + args->page_count <= pfn + r.size / 4096);
  }
  if (!mapped) Violation("dirty bits read of pages outside one mapping");
  auto* bytes = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(args->bitmap_ptr));
  std::memset(bytes, 0, (args->page_count + 7) / 8);
  for (uint64_t i = 0; i < args->page_count; ++i) {
    const uint64_t pfn = args->gpap_base + i;
    if (!p.dirty_pfns.count(pfn)) continue;
    bytes[i / 8] = static_cast<uint8_t>(bytes[i / 8] | (1u << (i % 8)));
    if (args->access_op == MSHV_GPAP_ACCESS_OP_CLEAR) p.dirty_pfns.erase(pfn);
  }
  return Ok();
}

}  // namespace virt::mshv::test
