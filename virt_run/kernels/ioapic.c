/* ioapic.c: an IRQ line the guest raises through the ISA IRQ line ports (OUT 0x2000 + n, which
 * the VMM turns into a line level) reaches the guest through the IOAPIC. Edge: one interrupt
 * per rising edge, none while held or on the fall. Level: the held line interrupts again after
 * each EOI (Remote IRR set meanwhile) until the guest drops it; masked, it is held and
 * delivered on unmask. Options: edge=N (default 10), level=N (default 11). */
#include "apic.h"
#include "cpu.h"
#include "idt.h"
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
static volatile uint32_t level_drop_at; /* the delivery count at which the handler drops it */
static volatile uint32_t remote_irr_seen; /* deliveries whose handler saw Remote IRR set */

static void set_line(unsigned line, bool high) { outb(IRQ_LINE_PORT + line, high); }
static volatile uint32_t *count(unsigned vector) { return &this_cpu()->irq_count[vector]; }

static void on_edge(struct frame *f) {
  (void)f;
  apic_eoi();
}

static void on_level(struct frame *f) {
  (void)f;
  if (ioapic_redir(level_pin) & IOAPIC_REDIR_REMOTE_IRR) ++remote_irr_seen;
  if (*count(LEVEL_VECTOR) >= level_drop_at) set_line(level_pin, false);
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
  settle();
  report(repeated && *count(LEVEL_VECTOR) == LEVEL_REPEATS,
         "level line %u: held, interrupts again after each EOI until dropped (%u of %u)", pin,
         *count(LEVEL_VECTOR), LEVEL_REPEATS);
  report(*count(LEVEL_VECTOR) != 0 && remote_irr_seen == *count(LEVEL_VECTOR),
         "level line %u: Remote IRR is set in the handler, before the EOI (%u of %u)", pin,
         remote_irr_seen, *count(LEVEL_VECTOR));
  report(*count(LEVEL_VECTOR) != 0 && !(ioapic_redir(pin) & IOAPIC_REDIR_REMOTE_IRR),
         "level line %u: Remote IRR is clear after the last EOI", pin);

  ioapic_set_masked(pin, true);
  uint32_t before = *count(LEVEL_VECTOR);
  level_drop_at = before + 1;
  set_line(pin, true);
  settle();
  report(*count(LEVEL_VECTOR) == before, "level line %u: masked, a held line does not interrupt",
         pin);
  ioapic_set_masked(pin, false);
  report(wait_until(*count(LEVEL_VECTOR) == before + 1),
         "level line %u: still held, delivered on unmask", pin);
  settle();
  report(*count(LEVEL_VECTOR) == before + 1, "level line %u: dropped in the handler, no more (%u)",
         pin, *count(LEVEL_VECTOR) - before);
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
  sti();
  edge(edge_pin);
  level(level_pin_arg);
  cli();
  report(irq_unexpected() == 0, "no interrupt on an unexpected vector (%u)", irq_unexpected());
  return report_summary();
}
