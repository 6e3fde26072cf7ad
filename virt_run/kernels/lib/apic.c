/* apic.c: the local APIC through xAPIC MMIO or x2APIC MSRs, whichever this CPU enabled. */
#include "apic.h"

#include "cpu.h"
#include "x86.h"

#define X2APIC_MSR(reg) (0x800 + ((reg) >> 4))

bool apic_enable(bool x2apic) {
  struct cpu *c = this_cpu();
  uint64_t base = rdmsr(MSR_APIC_BASE);
  /* Only leaving x2APIC mode needs the disabled state in between (SDM 10.12.5). Otherwise never
   * disable: QEMU's emulated APIC cannot be enabled again once disabled. */
  if ((base & APIC_BASE_X2APIC) && !x2apic) {
    base &= ~(uint64_t)(APIC_BASE_ENABLE | APIC_BASE_X2APIC);
    wrmsr(MSR_APIC_BASE, base);
  }
  if (!(base & APIC_BASE_ENABLE)) {
    base |= APIC_BASE_ENABLE;
    wrmsr(MSR_APIC_BASE, base);
  }
  c->x2apic = base & APIC_BASE_X2APIC;
  if (x2apic && !c->x2apic) {
    if (!(cpuid(1, 0).c & CPUID1_ECX_X2APIC)) return false;
    wrmsr(MSR_APIC_BASE, base | APIC_BASE_X2APIC);
    c->x2apic = true;
  }
  apic_write(APIC_SVR, 0x100 | APIC_SPURIOUS_VECTOR);
  apic_write(APIC_TPR, 0);
  return true;
}

uint32_t apic_read(unsigned reg) {
  if (this_cpu()->x2apic) return (uint32_t)rdmsr(X2APIC_MSR(reg));
  return mmio_read32(APIC_BASE_ADDR + reg);
}

void apic_write(unsigned reg, uint32_t value) {
  if (this_cpu()->x2apic) {
    wrmsr(X2APIC_MSR(reg), value);
  } else {
    mmio_write32(APIC_BASE_ADDR + reg, value);
  }
}

void apic_eoi(void) { apic_write(APIC_EOI, 0); }

uint32_t apic_id(void) {
  uint32_t id = apic_read(APIC_ID);
  return this_cpu()->x2apic ? id : id >> 24;
}

void apic_send_ipi(uint32_t dest, uint32_t icr) {
  if (this_cpu()->x2apic) {
    asm volatile("mfence" ::: "memory"); /* x2APIC ICR writes are not serializing */
    wrmsr(X2APIC_MSR(APIC_ICR), (uint64_t)dest << 32 | icr);
    return;
  }
  /* No wait for the delivery-status bit: KVM's in-kernel LAPIC delivers at once. */
  mmio_write32(APIC_BASE_ADDR + APIC_ICR2, dest << 24);
  mmio_write32(APIC_BASE_ADDR + APIC_ICR, icr);
}

void apic_timer_start(uint8_t vector, uint32_t mode, uint32_t count) {
  apic_write(APIC_TIMER_INITIAL, 0);
  apic_write(APIC_TIMER_DIVIDE, APIC_TIMER_DIVIDE_1);
  apic_write(APIC_LVT_TIMER, mode | vector);
  apic_write(APIC_TIMER_INITIAL, count);
}

void apic_timer_stop(void) {
  apic_write(APIC_TIMER_INITIAL, 0);
  apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED | APIC_SPURIOUS_VECTOR);
}
