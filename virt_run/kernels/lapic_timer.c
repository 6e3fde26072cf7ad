/* lapic_timer.c: the LAPIC timer fires on its vector: one-shot (once, then its count reads 0),
 * periodic (repeatedly, and never again once stopped), masked (counts down, no interrupt), and
 * TSC-deadline when CPUID.1:ECX[24] shows it. Time is measured in TSC cycles from the periodic
 * ticks themselves, so no clock rate is assumed. Option: apic=x2apic. */
#include "apic.h"
#include "cpu.h"
#include "idt.h"
#include "report.h"
#include "setup.h"
#include "wait.h"
#include "x86.h"

#define ONESHOT_VECTOR 0x50
#define PERIODIC_VECTOR 0x51
#define DEADLINE_VECTOR 0x52
#define MASKED_VECTOR 0x53
#define PERIOD 200000 /* timer ticks at divide 1: 200 us on KVM's 1 GHz APIC bus */
#define TICKS 5

static volatile uint64_t tick_tsc[TICKS + 1];

static void on_periodic(struct frame *f) {
  (void)f;
  unsigned n = this_cpu()->irq_count[PERIODIC_VECTOR];
  if (n <= TICKS) tick_tsc[n] = rdtsc();
  apic_eoi();
}

static void on_timer(struct frame *f) {
  (void)f;
  apic_eoi();
}

static volatile uint32_t *count(unsigned vector) { return &this_cpu()->irq_count[vector]; }

/* Busy-waits `cycles` TSC cycles with interrupts on. */
static void spin_tsc(uint64_t cycles) {
  uint64_t t0 = rdtsc();
  while (rdtsc() - t0 < cycles) pause();
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  if (!apic_mode_from_args()) return report_summary();
  const char *mode = this_cpu()->x2apic ? "x2APIC" : "xAPIC";
  idt_set_handler(ONESHOT_VECTOR, on_timer);
  idt_set_handler(PERIODIC_VECTOR, on_periodic);
  idt_set_handler(DEADLINE_VECTOR, on_timer);
  sti();

  apic_timer_start(ONESHOT_VECTOR, APIC_TIMER_ONESHOT, PERIOD);
  bool fired = wait_until(*count(ONESHOT_VECTOR) != 0);
  report(fired, "%s one-shot timer fires on vector 0x%x", mode, ONESHOT_VECTOR);
  report(apic_read(APIC_TIMER_CURRENT) == 0, "one-shot current count reads 0 after it fired (%u)",
         apic_read(APIC_TIMER_CURRENT));

  tick_tsc[0] = rdtsc();
  apic_timer_start(PERIODIC_VECTOR, APIC_TIMER_PERIODIC, PERIOD);
  bool ticked = wait_until(*count(PERIODIC_VECTOR) >= TICKS);
  apic_timer_stop();
  settle(); /* a tick accepted before the stop may still be delivered: let it */
  uint32_t ticks = *count(PERIODIC_VECTOR);
  report(ticked, "periodic timer fires repeatedly on vector 0x%x (%u ticks)", PERIODIC_VECTOR,
         ticks);
  /* One period in TSC cycles, from the ticks; a fallback if they did not come. */
  uint64_t period = ticked ? (tick_tsc[TICKS] - tick_tsc[1]) / (TICKS - 1) : 1ull << 20;
  report_info("one timer period of %u ticks is about %lu TSC cycles", PERIOD, period);

  spin_tsc(4 * period);
  report(*count(PERIODIC_VECTOR) == ticks, "stopped periodic timer stays quiet for 4 periods");
  report(*count(ONESHOT_VECTOR) == 1, "one-shot timer fired exactly once (%u) over %u periods",
         *count(ONESHOT_VECTOR), ticks + 4);

  apic_timer_start(MASKED_VECTOR, APIC_TIMER_ONESHOT | APIC_LVT_MASKED, PERIOD);
  bool ran = wait_until(apic_read(APIC_TIMER_CURRENT) == 0);
  spin_tsc(2 * period);
  report(ran && *count(MASKED_VECTOR) == 0, "masked one-shot timer counts down to 0, no interrupt");
  apic_timer_stop();

  if (cpuid(1, 0).c & CPUID1_ECX_TSC_DEADLINE) {
    apic_write(APIC_LVT_TIMER, APIC_TIMER_TSC_DEADLINE | DEADLINE_VECTOR);
    asm volatile("mfence" ::: "memory"); /* the LVT mode before the deadline (SDM 10.5.4.1) */
    wrmsr(MSR_TSC_DEADLINE, rdtsc() + period);
    bool deadline = wait_until(*count(DEADLINE_VECTOR) != 0);
    report(deadline, "TSC-deadline timer fires on vector 0x%x", DEADLINE_VECTOR);
    report(rdmsr(MSR_TSC_DEADLINE) == 0, "TSC-deadline MSR reads 0 after it fired");
    apic_timer_stop();
  } else {
    report_skip("TSC-deadline timer: CPUID.1:ECX[24] is 0");
  }
  cli();
  report(irq_unexpected() == 0, "no interrupt on an unexpected vector (%u)", irq_unexpected());
  return report_summary();
}
