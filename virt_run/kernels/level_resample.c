/* level_resample.c: the level-interrupt test device (virt-run's ports 0x2100-0x2102, a level
 * irqfd route with resample on line n). EOI without ack: the device is resampled, still
 * pending, and interrupts again; ack + EOI: it stops. The device's resample count (IN 0x2102)
 * proves the kernel's EOI notification reached it once per delivery. Where the LAPIC does not
 * hold interrupts in service (in_service.h) the hypervisor EOIs at delivery, before the
 * handler acks, so one late delivery after the ack is allowed. Option: line=N (default 12). */
#include "apic.h"
#include "cpu.h"
#include "idt.h"
#include "in_service.h"
#include "ioapic.h"
#include "report.h"
#include "setup.h"
#include "wait.h"
#include "x86.h"

#define DEVICE_BIND 0x2100      /* OUT n: bind to line n */
#define DEVICE_PENDING 0x2101   /* OUT 1: set the condition and signal; OUT 0: ack */
#define DEVICE_RESAMPLES 0x2102 /* IN: resample notifications seen, mod 256 */
#define VECTOR 0x62

static volatile uint32_t ack_at; /* the delivery count from which the handler acks */
static unsigned late_allowed;

static volatile uint32_t *count(void) { return &this_cpu()->irq_count[VECTOR]; }
static uint8_t resamples(void) { return inb(DEVICE_RESAMPLES); }

static void on_device(struct frame *f) {
  (void)f;
  if (*count() >= ack_at) outb(DEVICE_PENDING, 0);
  apic_eoi();
}

/* Raises the device once; the handler acks on delivery `acks_on` of this round. */
static void round(unsigned line, unsigned acks_on, const char *what) {
  uint32_t before = *count();
  uint8_t r0 = resamples();
  ack_at = before + acks_on;
  outb(DEVICE_PENDING, 1);
  bool delivered = wait_until(*count() - before >= acks_on);
  /* Quiet: every delivery resampled and nothing new through a settle (the device's re-signal
   * and its delivery are asynchronous). */
  uint32_t d;
  bool resampled;
  int tries = 0;
  do {
    d = *count() - before;
    resampled = wait_until((uint8_t)(resamples() - r0) == (uint8_t)d);
    settle();
  } while (*count() - before != d && ++tries < 4);
  uint8_t seen = resamples() - r0;
  report(delivered, "line %u, %s: interrupts again after each EOI until the ack (%u of %u)",
         line, what, d < acks_on ? d : acks_on, acks_on);
  report(delivered && d - acks_on <= late_allowed,
         "line %u, %s: after ack + EOI it stops (%u late, %u allowed)", line, what,
         delivered ? d - acks_on : 0, late_allowed);
  report(resampled && seen == (uint8_t)d && d != 0,
         "line %u, %s: the device saw one resample per delivery (%u for %u)", line, what, seen, d);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  unsigned pins = ioapic_pins();
  uint64_t line = 12;
  arg_u64("line", &line);
  if (line >= pins) report_abort("line=%lu: the IOAPIC has %u pins", line, pins);
  bool tracks = apic_tracks_in_service();
  late_allowed = tracks ? 0 : 1;
  report_info("the LAPIC %s", tracks ? "holds interrupts in service until EOI"
                                     : "does not hold interrupts in service (EOI at delivery)");
  idt_set_handler(VECTOR, on_device);
  outb(DEVICE_BIND, (uint8_t)line);
  ioapic_route(line, VECTOR, true, cpus[0].apic_id, false);
  sti();
  settle();
  report(*count() == 0, "line %lu: a freshly bound device raises nothing", line);
  round(line, 2, "EOI without ack, then ack + EOI");
  round(line, 1, "ack + EOI at once");
  round(line, 3, "two EOIs without ack, then ack + EOI");
  cli();
  ioapic_set_masked(line, true);
  report(irq_unexpected() == 0, "no interrupt on an unexpected vector (%u)", irq_unexpected());
  return report_summary();
}
