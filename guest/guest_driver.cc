// GuestDriver: setup of the test guest and handling of its routine exits.
#include "guest_driver.h"

#include <cstdio>

namespace virt::guest {

Result<std::unique_ptr<GuestDriver>> GuestDriver::Create(Partition& partition, uint32_t mode,
                                                         uint32_t mmio_value) {
  auto memory = GuestMemory::Allocate(kMemorySize);
  if (!memory) return memory.error();
  if (Status s = Load(memory->span()); !s) return s.error();
  if (Status s = partition.MapMemory({0, kMemorySize, memory->data(), MemoryFlags::kNone}); !s) {
    return s.error();
  }
  auto vcpu = partition.CreateVcpu(0);
  if (!vcpu) return vcpu.error();
  if (Status s = Start(**vcpu); !s) return s.error();
  return std::unique_ptr<GuestDriver>(
      new GuestDriver(std::move(*memory), std::move(*vcpu), mode, mmio_value));
}

Result<VcpuExit> GuestDriver::RunToEvent() {
  for (;;) {
    auto exit = vcpu_->Run();
    if (!exit) return exit;
    if (auto* io = std::get_if<IoExit>(&*exit)) {
      if (io->is_write && io->port == kHelloPort) {
        hello_.append(reinterpret_cast<const char*>(io->data.data()), io->data.size());
        continue;
      }
      if (!io->is_write && io->port == kModePort && io->size == 4) {
        const uint8_t bytes[4] = {static_cast<uint8_t>(mode_), static_cast<uint8_t>(mode_ >> 8),
                                  static_cast<uint8_t>(mode_ >> 16),
                                  static_cast<uint8_t>(mode_ >> 24)};
        if (Status s = vcpu_->CompleteIoIn(bytes); !s) return s.error();
        continue;
      }
      if (io->is_write && io->port == kEchoPort) {
        echoed_ = io->value();
        continue;
      }
    }
    if (auto* mmio = std::get_if<MmioExit>(&*exit)) {
      if (!mmio->is_write && mmio->address == kMmioAddress) {
        if (Status s = vcpu_->CompleteMmioRead(mmio_value_); !s) return s.error();
        continue;
      }
    }
    return exit;
  }
}

Result<uint32_t> GuestDriver::RunToVector() {
  auto exit = RunToEvent();
  if (!exit) return exit.error();
  const auto* io = std::get_if<IoExit>(&*exit);
  if (io == nullptr || !io->is_write || io->port != kVectorPort) {
    return Error::Make(ErrorCode::kFailedPrecondition, "GuestDriver::RunToVector",
                       "expected an OUT to the vector port, got " + Describe(*exit));
  }
  return io->value();
}

std::string Describe(const VcpuExit& exit) {
  char buf[128];
  if (const auto* io = std::get_if<IoExit>(&exit)) {
    std::snprintf(buf, sizeof buf, "io(port 0x%x, %s, %u bytes, value 0x%x)", io->port,
                  io->is_write ? "out" : "in", io->size, io->value());
  } else if (const auto* m = std::get_if<MmioExit>(&exit)) {
    std::snprintf(buf, sizeof buf, "mmio(0x%llx, %s, %u bytes)",
                  static_cast<unsigned long long>(m->address), m->is_write ? "write" : "read",
                  m->size);
  } else if (const auto* e = std::get_if<InternalErrorExit>(&exit)) {
    std::snprintf(buf, sizeof buf, "internal_error(suberror %u)", e->suberror);
  } else if (const auto* u = std::get_if<UnknownExit>(&exit)) {
    std::snprintf(buf, sizeof buf, "unknown(reason %u)", u->reason);
  } else {
    return ExitName(exit);
  }
  return buf;
}

}  // namespace virt::guest
