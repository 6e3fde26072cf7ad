// kvm_uapi.h: <linux/kvm.h> with the C++ layout of its flexible arrays made to match the kernel.
#pragma once

// Kernel headers before Linux 6.5 (Debian 12 ships 6.1) expand __DECLARE_FLEX_ARRAY to an
// anonymous struct holding an empty struct and the array. An empty struct has size 0 in C but 1
// in C++, so in C++ sizeof(kvm_cpuid2), sizeof(kvm_msrs) and sizeof(kvm_irq_routing) grow and
// the ioctl numbers that encode those sizes (KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2,
// KVM_GET/SET_MSRS, KVM_SET_GSI_ROUTING) no longer match the kernel: every such call fails with
// EINVAL. Upstream fixed it by declaring `T name[0]` under C++; do the same before the KVM
// headers are read, and check the result below.
#pragma GCC system_header  // the zero-size arrays below are the kernel ABI, not our code
#include <linux/stddef.h>
#ifdef __cplusplus
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#endif

#include <linux/kvm.h>

#include <cstddef>

namespace virt::kvm {

// If one of these fires, <linux/kvm.h> was included before this header with the broken macro.
static_assert(sizeof(kvm_cpuid2) == 8 && offsetof(kvm_cpuid2, entries) == 8);
static_assert(sizeof(kvm_msrs) == 8 && offsetof(kvm_msrs, entries) == 8);
static_assert(sizeof(kvm_irq_routing) == 8 && offsetof(kvm_irq_routing, entries) == 8);
static_assert(sizeof(kvm_irq_routing_entry) == 48);
static_assert(KVM_GET_SUPPORTED_CPUID == 0xc008ae05);
static_assert(KVM_SET_CPUID2 == 0x4008ae90);
static_assert(KVM_GET_MSRS == 0xc008ae88);
static_assert(KVM_SET_MSRS == 0x4008ae89);
static_assert(KVM_SET_GSI_ROUTING == 0x4008ae6a);
static_assert(KVM_IRQFD == 0x4020ae76);
static_assert(KVM_SIGNAL_MSI == 0x4020aea5);
static_assert(KVM_SET_USER_MEMORY_REGION == 0x4020ae46);
static_assert(KVM_GET_CPUID2 == 0xc008ae91);
static_assert(KVM_GET_MP_STATE == 0x8004ae98 && KVM_SET_MP_STATE == 0x4004ae99);
static_assert(sizeof(kvm_pit_config) == 64 && KVM_CREATE_PIT2 == 0x4040ae77);
static_assert(sizeof(kvm_irq_level) == 8 && KVM_IRQ_LINE == 0x4008ae61);
static_assert(sizeof(kvm_irqfd) == 32 && offsetof(kvm_irqfd, resamplefd) == 12);
static_assert(KVM_IRQFD_FLAG_DEASSIGN == 1 && KVM_IRQFD_FLAG_RESAMPLE == 2);
static_assert(sizeof(kvm_ioeventfd) == 64 && KVM_IOEVENTFD == 0x4040ae79);
static_assert(offsetof(kvm_ioeventfd, addr) == 8 && offsetof(kvm_ioeventfd, len) == 16 &&
              offsetof(kvm_ioeventfd, fd) == 20 && offsetof(kvm_ioeventfd, flags) == 24);
static_assert(sizeof(kvm_msr_list) == 4 && KVM_GET_MSR_INDEX_LIST == 0xc004ae02 &&
              KVM_GET_MSR_FEATURE_INDEX_LIST == 0xc004ae0a);
static_assert(sizeof(kvm_xsave) == 4096 && KVM_GET_XSAVE == 0x9000aea4 &&
              KVM_GET_XSAVE2 == 0x9000aecf && KVM_SET_XSAVE == 0x5000aea5);
static_assert(sizeof(kvm_xcrs) == 392 && KVM_GET_XCRS == 0x8188aea6 && KVM_SET_XCRS == 0x4188aea7);
static_assert(sizeof(kvm_debugregs) == 128 && KVM_GET_DEBUGREGS == 0x8080aea1);
static_assert(sizeof(kvm_lapic_state) == 1024 && KVM_GET_LAPIC == 0x8400ae8e);
static_assert(sizeof(kvm_vcpu_events) == 64 && KVM_GET_VCPU_EVENTS == 0x8040ae9f);
static_assert(sizeof(kvm_irqchip) == 520 && KVM_GET_IRQCHIP == 0xc208ae62);
static_assert(sizeof(kvm_pit_state2) == 112 && KVM_GET_PIT2 == 0x8070ae9f);
static_assert(sizeof(kvm_clock_data) == 48 && KVM_GET_CLOCK == 0x8030ae7c);
static_assert(sizeof(kvm_dirty_log) == 16 && KVM_GET_DIRTY_LOG == 0x4010ae42);
static_assert(sizeof(kvm_clear_dirty_log) == 24 && KVM_CLEAR_DIRTY_LOG == 0xc018aec0);
static_assert(sizeof(kvm_enable_cap) == 104 && KVM_ENABLE_CAP == 0x4068aea3);
static_assert(KVM_IOEVENTFD_FLAG_DATAMATCH == 1 && KVM_IOEVENTFD_FLAG_PIO == 2 &&
              KVM_IOEVENTFD_FLAG_DEASSIGN == 4);

}  // namespace virt::kvm
