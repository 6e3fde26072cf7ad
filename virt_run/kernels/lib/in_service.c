/* in_service.c: the in-service tracking probe (see in_service.h). */
#include "in_service.h"

#include "apic.h"
#include "cpu.h"
#include "idt.h"
#include "wait.h"
#include "x86.h"

static void hold(struct frame *f) { (void)f; } /* no EOI: stays in service, if tracked */

static void low(struct frame *f) {
  (void)f;
  apic_eoi();
}

bool apic_tracks_in_service(void) {
  volatile uint32_t *counts = this_cpu()->irq_count;
  uint64_t flags;
  asm volatile("pushfq; pop %0" : "=r"(flags));
  idt_set_handler(IN_SERVICE_HIGH_VECTOR, hold);
  idt_set_handler(IN_SERVICE_LOW_VECTOR, low);
  uint32_t high0 = counts[IN_SERVICE_HIGH_VECTOR], low0 = counts[IN_SERVICE_LOW_VECTOR];
  sti();
  apic_send_ipi(0, APIC_DEST_SELF | APIC_DM_FIXED | IN_SERVICE_HIGH_VECTOR);
  wait_until(counts[IN_SERVICE_HIGH_VECTOR] != high0);
  apic_send_ipi(0, APIC_DEST_SELF | APIC_DM_FIXED | IN_SERVICE_LOW_VECTOR);
  settle();
  bool tracks = counts[IN_SERVICE_LOW_VECTOR] == low0;
  apic_eoi(); /* the high vector's; the low one follows now if it was waiting */
  wait_until(counts[IN_SERVICE_LOW_VECTOR] != low0);
  if (!(flags & 0x200)) cli();
  idt_set_handler(IN_SERVICE_HIGH_VECTOR, 0);
  idt_set_handler(IN_SERVICE_LOW_VECTOR, 0);
  return tracks;
}
