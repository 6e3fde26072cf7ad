/* ioapic.c: IOAPIC register access through its index/data window. */
#include "ioapic.h"

#include "x86.h"

#define IOAPIC_BASE_ADDR 0xfec00000u
#define IOAPIC_INDEX 0x00
#define IOAPIC_DATA 0x10
#define IOAPIC_VERSION 0x01
#define IOAPIC_REDIR(pin) (0x10 + 2 * (pin))

uint32_t ioapic_read(unsigned reg) {
  mmio_write32(IOAPIC_BASE_ADDR + IOAPIC_INDEX, reg);
  return mmio_read32(IOAPIC_BASE_ADDR + IOAPIC_DATA);
}

void ioapic_write(unsigned reg, uint32_t value) {
  mmio_write32(IOAPIC_BASE_ADDR + IOAPIC_INDEX, reg);
  mmio_write32(IOAPIC_BASE_ADDR + IOAPIC_DATA, value);
}

unsigned ioapic_pins(void) { return ((ioapic_read(IOAPIC_VERSION) >> 16) & 0xff) + 1; }

uint64_t ioapic_redir(unsigned pin) {
  return ioapic_read(IOAPIC_REDIR(pin)) | (uint64_t)ioapic_read(IOAPIC_REDIR(pin) + 1) << 32;
}

static void write_redir(unsigned pin, uint64_t e) {
  /* High word (destination) first, so the entry is never live with a stale destination. */
  ioapic_write(IOAPIC_REDIR(pin) + 1, (uint32_t)(e >> 32));
  ioapic_write(IOAPIC_REDIR(pin), (uint32_t)e);
}

void ioapic_route(unsigned pin, uint8_t vector, bool level, uint32_t apic_id, bool masked) {
  uint64_t e = vector | (uint64_t)(apic_id & 0xff) << 56;
  if (level) e |= IOAPIC_REDIR_LEVEL;
  if (masked) e |= IOAPIC_REDIR_MASKED;
  write_redir(pin, e);
}

void ioapic_set_masked(unsigned pin, bool masked) {
  uint64_t e = ioapic_redir(pin) & ~IOAPIC_REDIR_REMOTE_IRR;
  write_redir(pin, masked ? e | IOAPIC_REDIR_MASKED : e & ~IOAPIC_REDIR_MASKED);
}
