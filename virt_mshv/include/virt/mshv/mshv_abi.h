// The /dev/mshv userspace ABI (Linux include/uapi/linux/mshv.h + hvgdk/hvhdk), self-contained.
#pragma once

// Debian 12's kernel headers predate this ABI, so the project carries its own copy. The names are
// the upstream ones (one grep goes from the kernel header to this file); they live in namespace
// virt::mshv as types and constexpr values, not macros, so do not include <linux/mshv.h> in the
// same translation unit. Every size, offset and ioctl number is checked against the reference.

#include <cstddef>
#include <cstdint>

#include "virt/mshv/hv_abi.h"

namespace virt::mshv {

// ---- ioctl number encoding (asm-generic/ioctl.h: nr 8 bits, type 8, size 14, dir 2) ----------
inline constexpr uint32_t kIocNone = 0;
inline constexpr uint32_t kIocWrite = 1;
inline constexpr uint32_t kIocRead = 2;

constexpr unsigned long Ioc(uint32_t dir, uint32_t type, uint32_t nr, size_t size) {
  return (static_cast<unsigned long>(dir) << 30) | (static_cast<unsigned long>(size) << 16) |
         (static_cast<unsigned long>(type) << 8) | nr;
}
constexpr unsigned long Io(uint32_t type, uint32_t nr) { return Ioc(kIocNone, type, nr, 0); }
template <typename T>
constexpr unsigned long Iow(uint32_t type, uint32_t nr) {
  return Ioc(kIocWrite, type, nr, sizeof(T));
}
template <typename T>
constexpr unsigned long Ior(uint32_t type, uint32_t nr) {
  return Ioc(kIocRead, type, nr, sizeof(T));
}
template <typename T>
constexpr unsigned long Iowr(uint32_t type, uint32_t nr) {
  return Ioc(kIocRead | kIocWrite, type, nr, sizeof(T));
}

inline constexpr uint32_t MSHV_IOCTL = 0xB8;

// ---- /dev/mshv: partition creation -----------------------------------------------------------
enum : uint32_t {
  MSHV_PT_BIT_LAPIC = 0,
  MSHV_PT_BIT_X2APIC = 1,
  MSHV_PT_BIT_GPA_SUPER_PAGES = 2,
  MSHV_PT_BIT_CPU_AND_XSAVE_FEATURES = 3,
};
enum : uint64_t { MSHV_PT_ISOLATION_NONE = 0 };

struct mshv_create_partition {
  uint64_t pt_flags;      // 1 << MSHV_PT_BIT_*
  uint64_t pt_isolation;  // MSHV_PT_ISOLATION_*
};

// ---- partition fd ------------------------------------------------------------------------------
struct mshv_create_vp {
  uint32_t vp_index;
};

enum : uint8_t {
  MSHV_SET_MEM_BIT_WRITABLE = 0,
  MSHV_SET_MEM_BIT_EXECUTABLE = 1,
  MSHV_SET_MEM_BIT_UNMAP = 2,
};

// Size and userspace_addr 4 KiB aligned; unmap (MSHV_SET_MEM_BIT_UNMAP) must match a mapping.
struct mshv_user_mem_region {
  uint64_t size;
  uint64_t guest_pfn;
  uint64_t userspace_addr;
  uint8_t flags;
  uint8_t rsvd[7];
};

enum : uint32_t {
  MSHV_IRQFD_BIT_DEASSIGN = 0,
  MSHV_IRQFD_BIT_RESAMPLE = 1,
};

struct mshv_user_irqfd {
  int32_t fd;
  int32_t resamplefd;
  uint32_t gsi;
  uint32_t flags;  // 1 << MSHV_IRQFD_BIT_*
};

enum : uint32_t {
  MSHV_IOEVENTFD_BIT_DATAMATCH = 0,
  MSHV_IOEVENTFD_BIT_PIO = 1,  // answered with EOPNOTSUPP by upstream mshv_eventfd.c
  MSHV_IOEVENTFD_BIT_DEASSIGN = 2,
};

struct mshv_user_ioeventfd {
  uint64_t datamatch;
  uint64_t addr;
  // 1, 2, 4 or 8 as the uapi comment says, or 0 for a store of any width (mshv_eventfd.c maps
  // it to HV_DOORBELL_FLAG_TRIGGER_SIZE_ANY).
  uint32_t len;
  int32_t fd;
  uint32_t flags;  // 1 << MSHV_IOEVENTFD_BIT_*
  uint8_t rsvd[4];
};

struct mshv_user_irq_entry {
  uint32_t gsi;
  uint32_t address_lo;
  uint32_t address_hi;
  uint32_t data;
};

// Followed in memory by `nr` mshv_user_irq_entry (a flexible array member upstream).
struct mshv_user_irq_table {
  uint32_t nr;
  uint32_t rsvd;  // must be 0
  // mshv_user_irq_entry entries[];
};
inline constexpr size_t kMshvUserIrqTableEntriesOffset = 8;

// MSHV_GET_GPAP_ACCESS_BITMAP: which access bit to read, and what to do with the bits read.
enum : uint8_t {
  MSHV_GPAP_ACCESS_TYPE_ACCESSED = 0,
  MSHV_GPAP_ACCESS_TYPE_DIRTY = 1,
};
enum : uint8_t {
  MSHV_GPAP_ACCESS_OP_NOOP = 0,
  MSHV_GPAP_ACCESS_OP_CLEAR = 1,  // clear the range's bits after reading them
  MSHV_GPAP_ACCESS_OP_SET = 2,
};

// One bit per page of [gpap_base, gpap_base + page_count) (guest page numbers) is written to
// bitmap_ptr, at least (page_count + 7) / 8 bytes, bit i of byte i / 8 for page gpap_base + i.
struct mshv_gpap_access_bitmap {
  uint8_t access_type;  // MSHV_GPAP_ACCESS_TYPE_*
  uint8_t access_op;    // MSHV_GPAP_ACCESS_OP_*
  uint8_t rsvd[6];      // must be 0
  uint64_t page_count;  // not 0
  uint64_t gpap_base;
  uint64_t bitmap_ptr;
};

inline constexpr uint16_t MSHV_HVCALL_MAX_SIZE = 4096;  // in_sz / out_sz limit

struct mshv_root_hvcall {
  uint16_t code;
  uint16_t reps;
  uint16_t in_sz;
  uint16_t out_sz;
  uint16_t status;  // out: the hypervisor's HV_STATUS_*
  uint8_t rsvd[6];
  uint64_t in_ptr;
  uint64_t out_ptr;
};

// ---- vp fd -------------------------------------------------------------------------------------
inline constexpr size_t MSHV_RUN_VP_BUF_SZ = 256;

struct mshv_run_vp {
  uint8_t msg_buf[MSHV_RUN_VP_BUF_SZ];  // one hv_message
};

enum : uint8_t {
  MSHV_VP_STATE_LAPIC = 0,
  MSHV_VP_STATE_XSAVE = 1,
  MSHV_VP_STATE_SIMP = 2,
  MSHV_VP_STATE_SIEFP = 3,
  MSHV_VP_STATE_SYNTHETIC_TIMERS = 4,
};

// buf_sz: in, the buffer's size (4 KiB multiple, at least the state's size); out, the state's
// size (LAPIC: one 4 KiB page; XSAVE: the partition's maximum XSAVE data size, compacted form).
struct mshv_get_set_vp_state {
  uint8_t type;  // MSHV_VP_STATE_*
  uint8_t rsvd[3];
  uint32_t buf_sz;
  uint64_t buf_ptr;  // 4 KiB aligned
};
inline constexpr uint32_t kMshvLapicStateSize = 4096;  // HV_HYP_PAGE_SIZE

// ---- ioctl numbers -----------------------------------------------------------------------------
inline constexpr unsigned long MSHV_CREATE_PARTITION = Iow<mshv_create_partition>(MSHV_IOCTL, 0x00);
inline constexpr unsigned long MSHV_INITIALIZE_PARTITION = Io(MSHV_IOCTL, 0x00);
inline constexpr unsigned long MSHV_CREATE_VP = Iow<mshv_create_vp>(MSHV_IOCTL, 0x01);
inline constexpr unsigned long MSHV_SET_GUEST_MEMORY = Iow<mshv_user_mem_region>(MSHV_IOCTL, 0x02);
inline constexpr unsigned long MSHV_IRQFD = Iow<mshv_user_irqfd>(MSHV_IOCTL, 0x03);
inline constexpr unsigned long MSHV_IOEVENTFD = Iow<mshv_user_ioeventfd>(MSHV_IOCTL, 0x04);
inline constexpr unsigned long MSHV_SET_MSI_ROUTING = Iow<mshv_user_irq_table>(MSHV_IOCTL, 0x05);
inline constexpr unsigned long MSHV_GET_GPAP_ACCESS_BITMAP =
    Iowr<mshv_gpap_access_bitmap>(MSHV_IOCTL, 0x06);
inline constexpr unsigned long MSHV_ROOT_HVCALL = Iowr<mshv_root_hvcall>(MSHV_IOCTL, 0x07);
inline constexpr unsigned long MSHV_RUN_VP = Ior<mshv_run_vp>(MSHV_IOCTL, 0x00);
inline constexpr unsigned long MSHV_GET_VP_STATE = Iowr<mshv_get_set_vp_state>(MSHV_IOCTL, 0x01);
inline constexpr unsigned long MSHV_SET_VP_STATE = Iowr<mshv_get_set_vp_state>(MSHV_IOCTL, 0x02);

// ---- checks against the reference (mshv-abi.md) ------------------------------------------------
static_assert(sizeof(mshv_create_partition) == 16);
static_assert(offsetof(mshv_create_partition, pt_flags) == 0);
static_assert(offsetof(mshv_create_partition, pt_isolation) == 8);
static_assert(sizeof(mshv_create_vp) == 4);
static_assert(sizeof(mshv_user_mem_region) == 32);
static_assert(offsetof(mshv_user_mem_region, size) == 0);
static_assert(offsetof(mshv_user_mem_region, guest_pfn) == 8);
static_assert(offsetof(mshv_user_mem_region, userspace_addr) == 16);
static_assert(offsetof(mshv_user_mem_region, flags) == 24);
static_assert(offsetof(mshv_user_mem_region, rsvd) == 25);
static_assert(sizeof(mshv_user_irqfd) == 16);
static_assert(offsetof(mshv_user_irqfd, fd) == 0);
static_assert(offsetof(mshv_user_irqfd, resamplefd) == 4);
static_assert(offsetof(mshv_user_irqfd, gsi) == 8);
static_assert(offsetof(mshv_user_irqfd, flags) == 12);
static_assert(sizeof(mshv_user_ioeventfd) == 32);
static_assert(offsetof(mshv_user_ioeventfd, datamatch) == 0);
static_assert(offsetof(mshv_user_ioeventfd, addr) == 8);
static_assert(offsetof(mshv_user_ioeventfd, len) == 16);
static_assert(offsetof(mshv_user_ioeventfd, fd) == 20);
static_assert(offsetof(mshv_user_ioeventfd, flags) == 24);
static_assert(offsetof(mshv_user_ioeventfd, rsvd) == 28);
static_assert(sizeof(mshv_user_irq_entry) == 16);
static_assert(offsetof(mshv_user_irq_entry, gsi) == 0);
static_assert(offsetof(mshv_user_irq_entry, address_lo) == 4);
static_assert(offsetof(mshv_user_irq_entry, address_hi) == 8);
static_assert(offsetof(mshv_user_irq_entry, data) == 12);
static_assert(sizeof(mshv_user_irq_table) == 8);
static_assert(offsetof(mshv_user_irq_table, nr) == 0);
static_assert(offsetof(mshv_user_irq_table, rsvd) == 4);
static_assert(kMshvUserIrqTableEntriesOffset == sizeof(mshv_user_irq_table));
static_assert(sizeof(mshv_gpap_access_bitmap) == 32);
static_assert(offsetof(mshv_gpap_access_bitmap, access_type) == 0);
static_assert(offsetof(mshv_gpap_access_bitmap, access_op) == 1);
static_assert(offsetof(mshv_gpap_access_bitmap, rsvd) == 2);
static_assert(offsetof(mshv_gpap_access_bitmap, page_count) == 8);
static_assert(offsetof(mshv_gpap_access_bitmap, gpap_base) == 16);
static_assert(offsetof(mshv_gpap_access_bitmap, bitmap_ptr) == 24);
static_assert(MSHV_GPAP_ACCESS_TYPE_DIRTY == 1 && MSHV_GPAP_ACCESS_OP_CLEAR == 1);
static_assert(sizeof(mshv_root_hvcall) == 32);
static_assert(offsetof(mshv_root_hvcall, code) == 0);
static_assert(offsetof(mshv_root_hvcall, reps) == 2);
static_assert(offsetof(mshv_root_hvcall, in_sz) == 4);
static_assert(offsetof(mshv_root_hvcall, out_sz) == 6);
static_assert(offsetof(mshv_root_hvcall, status) == 8);
static_assert(offsetof(mshv_root_hvcall, rsvd) == 10);
static_assert(offsetof(mshv_root_hvcall, in_ptr) == 16);
static_assert(offsetof(mshv_root_hvcall, out_ptr) == 24);
static_assert(sizeof(mshv_run_vp) == 256);
static_assert(sizeof(mshv_get_set_vp_state) == 16);
static_assert(offsetof(mshv_get_set_vp_state, type) == 0);
static_assert(offsetof(mshv_get_set_vp_state, rsvd) == 1);
static_assert(offsetof(mshv_get_set_vp_state, buf_sz) == 4);
static_assert(offsetof(mshv_get_set_vp_state, buf_ptr) == 8);

static_assert(sizeof(hv_message) == sizeof(mshv_run_vp));

static_assert(MSHV_CREATE_PARTITION == 0x4010b800);
static_assert(MSHV_INITIALIZE_PARTITION == 0x0000b800);
static_assert(MSHV_CREATE_VP == 0x4004b801);
static_assert(MSHV_SET_GUEST_MEMORY == 0x4020b802);
static_assert(MSHV_IRQFD == 0x4010b803);
static_assert(MSHV_IOEVENTFD == 0x4020b804);
static_assert(MSHV_SET_MSI_ROUTING == 0x4008b805);
static_assert(MSHV_GET_GPAP_ACCESS_BITMAP == 0xc020b806);
static_assert(MSHV_ROOT_HVCALL == 0xc020b807);
static_assert(MSHV_RUN_VP == 0x8100b800);
static_assert(MSHV_GET_VP_STATE == 0xc010b801);
static_assert(MSHV_SET_VP_STATE == 0xc010b802);

}  // namespace virt::mshv
