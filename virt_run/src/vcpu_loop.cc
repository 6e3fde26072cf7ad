// RunVcpuLoop: dispatching port and MMIO exits, and turning the others into verdicts.
#include "virt_run/vcpu_loop.h"

#include <cstdio>
#include <type_traits>
#include <variant>
#include <vector>

#include "virt_run/checked.h"
#include "virt_run/exit_status.h"

namespace virt::run {
namespace {

// What a loop step decided: run again, or stop (the verdict is recorded).
enum class Step { kContinue, kStop };

Step Fail(Vcpu& vcpu, const VcpuLoopContext& ctx, int status, const std::string& what) {
  ctx.stop.Stop(Verdict{status, DescribeAt(vcpu, what)});
  return Step::kStop;
}

Step HandleIo(Vcpu& vcpu, const VcpuLoopContext& ctx, const IoExit& io,
              std::vector<uint8_t>& buffer) {
  const size_t bytes = size_t{io.size} * io.count;
  if ((io.size != 1 && io.size != 2 && io.size != 4) || io.count == 0) {
    return Fail(vcpu, ctx, kStatusInternal,
                ": port " + Hex(io.port) + " access of " + std::to_string(io.count) + " x " +
                    std::to_string(io.size) + " bytes");
  }
  const char* dir = io.is_write ? " write: " : " read: ";
  if (io.is_write) {
    if (io.data.size() < bytes) {
      return Fail(vcpu, ctx, kStatusInternal, ": port " + Hex(io.port) + " OUT without its data");
    }
    for (uint32_t i = 0; i < io.count; ++i) {
      Status s = ctx.ports.Write(io.port, io.data.subspan(size_t{i} * io.size, io.size));
      if (!s) return Fail(vcpu, ctx, kStatusInternal, ": port " + Hex(io.port) + dir + s.error().Message());
    }
    return Step::kContinue;
  }
  buffer.resize(bytes);
  for (uint32_t i = 0; i < io.count; ++i) {
    Status s = ctx.ports.Read(io.port, std::span(buffer).subspan(size_t{i} * io.size, io.size));
    if (!s) return Fail(vcpu, ctx, kStatusInternal, ": port " + Hex(io.port) + dir + s.error().Message());
  }
  if (Status s = vcpu.CompleteIoIn(buffer); !s) {
    return Fail(vcpu, ctx, kStatusInternal, ": CompleteIoIn: " + s.error().Message());
  }
  return Step::kContinue;
}

Step HandleMmio(Vcpu& vcpu, const VcpuLoopContext& ctx, const MmioExit& mmio) {
  if (mmio.size == 0 || mmio.size > 8) {
    return Fail(vcpu, ctx, kStatusInternal,
                ": MMIO access of " + std::to_string(mmio.size) + " bytes at " + Hex(mmio.address));
  }
  uint8_t bytes[8];
  const std::span<uint8_t> data(bytes, mmio.size);
  if (mmio.is_write) {
    StoreLittleEndian(mmio.value, data);
    if (Status s = ctx.mmio.Write(mmio.address, data); !s) {
      return Fail(vcpu, ctx, kStatusInternal,
                  ": MMIO write at " + Hex(mmio.address) + ": " + s.error().Message());
    }
    return Step::kContinue;
  }
  if (Status s = ctx.mmio.Read(mmio.address, data); !s) {
    return Fail(vcpu, ctx, kStatusInternal,
                ": MMIO read at " + Hex(mmio.address) + ": " + s.error().Message());
  }
  if (Status s = vcpu.CompleteMmioRead(LittleEndian(data)); !s) {
    return Fail(vcpu, ctx, kStatusInternal, ": CompleteMmioRead: " + s.error().Message());
  }
  return Step::kContinue;
}

std::string InternalErrorText(const InternalErrorExit& e) {
  std::string out = "internal error exit (suberror " + std::to_string(e.suberror);
  for (uint32_t i = 0; i < e.ndata && i < e.data.size(); ++i) out += (i ? " " : ", data ") + Hex(e.data[i]);
  return out + ")";
}

std::string UnsupportedText(const UnsupportedInstructionExit& e) {
  std::string out = std::string("unsupported instruction (") + e.reason + ") accessing " +
                    Hex(e.address) + ", bytes";
  for (uint8_t i = 0; i < e.length && i < e.bytes.size(); ++i) {
    char b[4];
    std::snprintf(b, sizeof b, " %02x", e.bytes[i]);
    out += b;
  }
  return out;
}

}  // namespace

std::string DescribeAt(Vcpu& vcpu, const std::string& what) {
  std::string out = "vCPU " + std::to_string(vcpu.index()) + (what.starts_with(':') ? "" : " ") + what;
  auto regs = vcpu.GetRegisters();
  return out + (regs ? " at RIP " + Hex(regs->rip) : " (RIP unknown: " + regs.error().Message() + ")");
}

void RunVcpuLoop(Vcpu& vcpu, const VcpuLoopContext& ctx) {
  std::vector<uint8_t> in_buffer;
  while (!ctx.stop.stopped()) {
    auto exit = vcpu.Run();
    if (!exit) {
      Fail(vcpu, ctx, kStatusInternal, ": Run failed: " + exit.error().Message());
      return;
    }
    ctx.stats.Count(*exit);
    const Step step = std::visit(
        [&](const auto& e) -> Step {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, IoExit>) {
            return HandleIo(vcpu, ctx, e, in_buffer);
          } else if constexpr (std::is_same_v<T, MmioExit>) {
            return HandleMmio(vcpu, ctx, e);
          } else if constexpr (std::is_same_v<T, CancelledExit>) {
            return ctx.stop.stopped() ? Step::kStop : Step::kContinue;
          } else if constexpr (std::is_same_v<T, ShutdownExit>) {
            return Fail(vcpu, ctx, kStatusShutdown, "shut down (triple fault)");
          } else if constexpr (std::is_same_v<T, HaltExit>) {
            return Fail(vcpu, ctx, kStatusInternal,
                        "halted (HLT, and no in-kernel irqchip will wake it)");
          } else if constexpr (std::is_same_v<T, InternalErrorExit>) {
            return Fail(vcpu, ctx, kStatusInternal, std::string(": ") + InternalErrorText(e));
          } else if constexpr (std::is_same_v<T, UnknownExit>) {
            return Fail(vcpu, ctx, kStatusInternal,
                        ": unknown exit (reason " + std::to_string(e.reason) + ")");
          } else {
            static_assert(std::is_same_v<T, UnsupportedInstructionExit>);
            return Fail(vcpu, ctx, kStatusInternal, std::string(": ") + UnsupportedText(e));
          }
        },
        *exit);
    if (step == Step::kStop) return;
  }
}

}  // namespace virt::run
