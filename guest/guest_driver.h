// GuestDriver: runs the test guest on any Partition and answers its routine exits.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "guest_memory.h"
#include "test_guest.h"
#include "virt/partition.h"

namespace virt::guest {

// Maps 2 MiB at guest physical 0, loads the image, creates vCPU 0 and starts it. RunToEvent
// then handles the guest's routine exits itself (hello bytes, the mode IN, the MMIO read and its
// echo) and returns the first exit that is news for the caller: kReadyPort, kVectorPort, a
// halt, a cancel, an error exit ...
class GuestDriver {
 public:
  // `mmio_value` is what the guest's MMIO read of kMmioAddress returns (it echoes it back).
  static Result<std::unique_ptr<GuestDriver>> Create(Partition& partition, uint32_t mode,
                                                     uint32_t mmio_value);

  Result<VcpuExit> RunToEvent();

  // Runs to the next event and expects an OUT to kVectorPort: returns the vector reported.
  Result<uint32_t> RunToVector();

  Vcpu& vcpu() { return *vcpu_; }
  const std::string& hello() const { return hello_; }
  std::optional<uint32_t> echoed() const { return echoed_; }

 private:
  GuestDriver(GuestMemory memory, std::unique_ptr<Vcpu> vcpu, uint32_t mode, uint32_t mmio_value)
      : memory_(std::move(memory)), vcpu_(std::move(vcpu)), mode_(mode), mmio_value_(mmio_value) {}

  GuestMemory memory_;
  std::unique_ptr<Vcpu> vcpu_;
  uint32_t mode_;
  uint32_t mmio_value_;
  std::string hello_;
  std::optional<uint32_t> echoed_;
};

// "io(port 0x14, out, 4 bytes)" and similar, for failure messages.
std::string Describe(const VcpuExit& exit);

}  // namespace virt::guest
