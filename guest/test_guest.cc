// Loading the test guest and entering it in flat 32-bit protected mode.
#include "test_guest.h"

#include <cstring>

namespace virt::guest {

Status Load(std::span<uint8_t> memory) {
  const auto image = Image();
  if (memory.size() < kMemorySize) {
    return Error::Make(ErrorCode::kInvalidArgument, "guest::Load", "guest memory below 2 MiB");
  }
  std::memcpy(memory.data() + kLoadAddress, image.data(), image.size());
  return Ok();
}

Status Start(Vcpu& vcpu) {
  auto sregs = vcpu.GetSpecialRegisters();
  if (!sregs) return sregs.error();
  SegmentRegister code{};
  code.base = 0;
  code.limit = 0xffffffff;
  code.selector = 0x08;
  code.type = 0xb;  // execute/read, accessed
  code.present = 1;
  code.db = 1;
  code.s = 1;
  code.g = 1;
  SegmentRegister data = code;
  data.selector = 0x10;
  data.type = 0x3;  // read/write, accessed
  sregs->cs = code;
  sregs->ds = sregs->es = sregs->fs = sregs->gs = sregs->ss = data;
  sregs->cr0 |= 1;  // PE
  if (Status s = vcpu.SetSpecialRegisters(*sregs); !s) return s;

  Registers regs;
  regs.rip = kLoadAddress;
  regs.rflags = 0x2;
  regs.rsp = 0x9000;
  return vcpu.SetRegisters(regs);
}

}  // namespace virt::guest
