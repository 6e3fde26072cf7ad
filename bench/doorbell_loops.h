// doorbell_loops: the three set-ups of the doorbell rows, each a test guest ringing kDoorbellPort.
//
// The guest (kModePortDoorbell) rings with a 4-byte OUT and waits for an MSI before ringing
// again. A batch of N round trips is, on each set-up, N times: deliver the MSI that answers the
// last ring, and see the next ring.
//   RawDoorbellLoop      raw KVM: KVM_IOEVENTFD on the port, KVM_IRQFD on GSI 24; the vCPU
//                        blocks in KVM_RUN on its own thread; the caller's thread is the
//                        device: epoll_wait on the doorbell eventfd, read(2) it, write(2) the
//                        irqfd eventfd.
//   LibraryDoorbellLoop  the same through the library: Partition::doorbells() + irqfd(); the
//                        device waits with a Poller whose callback drains the doorbell Event
//                        (TryWait) and answers through IrqFdRoute::event().Signal().
//   PioExitLoop          no doorbell: each ring is a PIO exit that the VMM's vCPU thread (the
//                        caller's) answers with Partition::RequestMsi before re-entering.
// The MSI is vector 0x40 to APIC 0 everywhere; the doorbell loops stop the guest with an MSI
// on kStopVector, and it reports the rings it got answered, which must equal the rounds run.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "guest_driver.h"
#include "raw_kvm.h"
#include "virt/hypervisor.h"
#include "virt/poller.h"

namespace virt_bench {

template <typename T>
using Made = std::expected<T, std::string>;

class RawDoorbellLoop {
 public:
  // Sets up the VM, starts the vCPU thread and waits for the first ring.
  static Made<std::unique_ptr<RawDoorbellLoop>> Start(const raw::System& system);
  ~RawDoorbellLoop();  // Stop, unchecked

  // Times `n` round trips.
  Made<double> Batch(uint32_t n);
  // Stops the guest, joins the vCPU thread and checks the guest's count.
  Made<void> Stop();

 private:
  RawDoorbellLoop() = default;
  Made<void> WaitRing();

  raw::Fd vm_;
  std::optional<raw::Guest> guest_;
  raw::Fd irq_event_;
  raw::Fd bell_;
  raw::Fd epoll_;
  std::thread vcpu_thread_;
  std::string vcpu_result_;  // the vCPU thread's failure, empty when it saw the final report
  uint32_t reported_ = 0;
  uint64_t rounds_ = 0;  // rings answered
};

class LibraryDoorbellLoop {
 public:
  static Made<std::unique_ptr<LibraryDoorbellLoop>> Start(virt::Hypervisor& hv);
  ~LibraryDoorbellLoop();

  Made<double> Batch(uint32_t n);
  Made<void> Stop();

 private:
  LibraryDoorbellLoop() = default;
  Made<void> WaitRing();

  // Destroyed bottom-up: the poller, the doorbell, the route, the guest, the partition.
  std::unique_ptr<virt::Partition> partition_;
  std::unique_ptr<virt::guest::GuestDriver> driver_;
  std::unique_ptr<virt::IrqFdRoute> route_;
  std::unique_ptr<virt::DoorbellRegistration> bell_;
  std::optional<virt::Poller> poller_;
  std::thread vcpu_thread_;
  std::string vcpu_result_;
  uint32_t reported_ = 0;
  uint64_t rings_ = 0;   // drained by the poller callback
  uint64_t errors_ = 0;  // TryWait failures in the callback
  uint64_t rounds_ = 0;
};

class PioExitLoop {
 public:
  // Sets up the partition (no doorbell) and runs the guest to its first ring's exit.
  static Made<std::unique_ptr<PioExitLoop>> Start(virt::Hypervisor& hv);

  Made<double> Batch(uint32_t n);

 private:
  PioExitLoop() = default;

  std::unique_ptr<virt::Partition> partition_;
  std::unique_ptr<virt::guest::GuestDriver> driver_;
  uint32_t next_ring_ = 0;
};

}  // namespace virt_bench
