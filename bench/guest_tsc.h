// guest_tsc: the TSC rate a KVM guest sees by default, to turn a kernel's TSC cycles into ns.
#pragma once

#include <expected>
#include <string>

namespace virt_bench {

// The default guest TSC rate: KVM_GET_TSC_KHZ on vCPU 0 of a fresh VM (KVM_CREATE_VM,
// KVM_CREATE_VCPU, raw ioctls, all closed again). Neither virt-run nor QEMU without
// `-cpu ...,tsc-frequency=` sets another rate (KVM_SET_TSC_KHZ), so a guest under either counts
// at this rate. Fails with the failing call and errno text.
std::expected<double, std::string> GuestTscKhz();

// The host's TSC rate measured against CLOCK_MONOTONIC_RAW over about 20 ms (rdtsc before and
// after); a cross-check of GuestTscKhz() on hosts whose guests run at the host rate.
double HostTscKhz();

}  // namespace virt_bench
