/* ioapic.c: an IRQ line the guest raises through the ISA IRQ line ports (OUT 0x2000 + n, which
 * the VMM turns into a line level) reaches the guest through the IOAPIC. Edge: one interrupt
 * per rising edge, none while held or on the fall. Level: the held line interrupts again after
 * each EOI (Remote IRR set meanwhile) until the guest drops it, then stops; masked, it is held
 * and delivered on unmask. Where the LAPIC does not hold interrupts in service (in_service.h),
 * one late delivery after the drop is allowed. Options: edge=N (default 10), level=N (11). */
#include "apic.h"
#include "cpu.h"
#include "idt.h"
#include "in_service.h"
#include "ioapic.h"
#include "report.h"
#include "setup.h"
#include "wait.h"
#include "x86.h"

#define IRQ_LINE_PORT 0x2000
#define EDGE_VECTOR 0x60
#define LEVEL_VECTOR 0x61
#define LEVEL_REPEATS 3

static unsigned level_pin;
static volatile uint32_t level_drop_at;   /* the delivery count at which the handler drops it */
static volatile uint32_t remote_irr_seen; /* deliveries up to the drop that saw Remote IRR */
static unsigned late_allowed;             /* deliveries allowed after the drop */

static void set_line(unsigned line, bool high) { outb(IRQ_LINE_PORT + line, high); }
static volatile uint32_t *count(unsigned vector) { return &this_cpu()->irq_count[vector]; }

static void on_edge(struct frame *f) {
  (void)f;
  apic_eoi();
}

static void on_level(struct frame *f) {
  (void)f;
  uint32_t n = *count(LEVEL_VECTOR);
  if (n <= level_drop_at && (ioapic_redir(level_pin) & IOAPIC_REDIR_REMOTE_IRR)) {
    ++remote_irr_seen;
  }
  if (n == level_drop_at) set_line(level_pin, false);
  apic_eoi();
}

static unsigned pin_arg(const char *key, unsigned fallback, unsigned pins) {
  uint64_t v = fallback;
  arg_u64(key, &v);
  if (v >= pins) report_abort("%s=%lu: the IOAPIC has %u pins", key, v, pins);
  return (unsigned)v;
}

static void edge(unsigned pin) {
  idt_set_handler(EDGE_VECTOR, on_edge);
  set_line(pin, false);
  ioapic_route(pin, EDGE_VECTOR, false, cpus[0].apic_id, false);
  settle();
  report(*count(EDGE_VECTOR) == 0, "edge line %u: routing it while low raises nothing", pin);
  set_line(pin, true);
  report(wait_until(*count(EDGE_VECTOR) == 1), "edge line %u: raised, arrives on vector 0x%x",
         pin, EDGE_VECTOR);
  settle();
  report(*count(EDGE_VECTOR) == 1, "edge line %u: held high, no second interrupt (%u)", pin,
         *count(EDGE_VECTOR));
  set_line(pin, false);
  settle();
  report(*count(EDGE_VECTOR) == 1, "edge line %u: lowered, nothing (%u)", pin,
         *count(EDGE_VECTOR));
  set_line(pin, true);
  set_line(pin, false);
  report(wait_until(*count(EDGE_VECTOR) == 2), "edge line %u: a second pulse interrupts again",
         pin);
  settle();
  report(*count(EDGE_VECTOR) == 2, "edge line %u: two pulses, two interrupts (%u)", pin,
         *count(EDGE_VECTOR));
  ioapic_set_masked(pin, true);
}

/* After the handler dropped the line at delivery `drop_at`: nothing more but what is allowed. */
static void expect_stops(unsigned pin, uint32_t drop_at, const char *when) {
  settle();
  uint32_t late = *count(LEVEL_VECTOR) - drop_at;
  report(*count(LEVEL_VECTOR) >= drop_at && late <= late_allowed,
         "level line %u: %s, dropped in the handler, then it stops (%u late, %u allowed)", pin,
         when, late, late_allowed);
}

static void level(unsigned pin) {
  level_pin = pin;
  idt_set_handler(LEVEL_VECTOR, on_level);
  set_line(pin, false);
  ioapic_route(pin, LEVEL_VECTOR, true, cpus[0].apic_id, false);
  settle();
  report(*count(LEVEL_VECTOR) == 0, "level line %u: routing it while low raises nothing", pin);

  level_drop_at = LEVEL_REPEATS;
  set_line(pin, true);
  bool repeated = wait_until(*count(LEVEL_VECTOR) >= LEVEL_REPEATS);
  uint32_t n = *count(LEVEL_VECTOR);
  report(repeated, "level line %u: held, interrupts again after each EOI (%u of %u)", pin,
         n < LEVEL_REPEATS ? n : LEVEL_REPEATS, LEVEL_REPEATS);
  expect_stops(pin, LEVEL_REPEATS, "held");
  report(remote_irr_seen == LEVEL_REPEATS,
         "level line %u: Remote IRR is set in the handler while the line is high (%u of %u)",
         pin, remote_irr_seen, LEVEL_REPEATS);
  report(!(ioapic_redir(pin) & IOAPIC_REDIR_REMOTE_IRR),
         "level line %u: Remote IRR is clear after the last EOI", pin);

  ioapic_set_masked(pin, true);
  uint32_t before = *count(LEVEL_VECTOR);
  level_drop_at = before + 1;
  set_line(pin, true);
  settle();
  report(*count(LEVEL_VECTOR) == before, "level line %u: masked, a held line does not interrupt",
         pin);
  ioapic_set_masked(pin, false);
  report(wait_until(*count(LEVEL_VECTOR) > before),
         "level line %u: still held, delivered on unmask", pin);
  expect_stops(pin, before + 1, "unmasked");
  ioapic_set_masked(pin, true);
  set_line(pin, false);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  unsigned pins = ioapic_pins();
  report_info("IOAPIC version 0x%x, %u pins", ioapic_read(1), pins);
  unsigned edge_pin = pin_arg("edge", 10, pins), level_pin_arg = pin_arg("level", 11, pins);
  if (edge_pin == level_pin_arg) report_abort("edge and level must be different lines");
  bool tracks = apic_tracks_in_service();
  late_allowed = tracks ? 0 : 1;
  report_info("the LAPIC %s", tracks ? "holds interrupts in service until EOI"
                                     : "does not hold interrupts in service (EOI at delivery)");
  sti();
  edge(edge_pin);
  level(level_pin_arg);
  cli();
  report(irq_unexpected() == 0, "no interrupt on an unexpected vector (%u)", irq_unexpected());
  return report_summary();
}
