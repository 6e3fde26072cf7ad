/* smp.c: SMP bring-up and IPIs. Brings up every AP (fw_cfg NB_CPUS) with INIT/SIPI/SIPI;
 * each AP records its APIC ID and says it is online; the boot CPU then sends a fixed IPI to
 * each AP in turn, a broadcast to all but itself and one to itself, and every IPI must arrive
 * on its vector at the right CPU, exactly once. Options: apic=x2apic (every CPU in x2APIC
 * mode), cpus=N (expected CPUs).
 */
#include "apic.h"
#include "cpu.h"
#include "idt.h"
#include "report.h"
#include "setup.h"
#include "smp.h"
#include "wait.h"
#include "x86.h"

#define IPI_VECTOR 0x40
#define BROADCAST_VECTOR 0x41
#define SELF_VECTOR 0x42

static volatile uint32_t lapic_id[MAX_CPUS]; /* each CPU's LAPIC ID register */
static volatile uint32_t seen[3][MAX_CPUS];  /* [vector - IPI_VECTOR][cpu index] */
static volatile uint64_t up_tsc[MAX_CPUS];   /* TSC when each AP reached C code */

/* Runs on each CPU as it comes up; an AP also says so itself, on the shared console. */
static void record_lapic_id(void) {
  struct cpu *c = this_cpu();
  up_tsc[c->index] = rdtsc();
  lapic_id[c->index] = apic_id();
  if (c->index != 0) report_info("CPU %u: AP online, LAPIC ID %u", c->index, lapic_id[c->index]);
}

static void on_ipi(struct frame *f) {
  ++seen[f->vector - IPI_VECTOR][this_cpu()->index];
  apic_eoi();
}

/* The per-CPU counts of one vector equal `want` (a bitmap of the CPUs that must have one). */
static bool counts_are(unsigned vector, uint32_t want, unsigned n) {
  for (unsigned i = 0; i < n; ++i) {
    if (seen[vector - IPI_VECTOR][i] != ((want >> i) & 1)) return false;
  }
  return true;
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  if (!apic_mode_from_args()) return report_summary();
  const bool x2 = this_cpu()->x2apic;
  for (unsigned v = IPI_VECTOR; v <= SELF_VECTOR; ++v) idt_set_handler(v, on_ipi);

  unsigned expected = smp_expected_cpus();
  uint64_t want_cpus;
  if (arg_u64("cpus", &want_cpus)) {
    report(expected == want_cpus, "fw_cfg NB_CPUS is %u (expected %lu)", expected, want_cpus);
  }
  if (expected > MAX_CPUS) report_abort("NB_CPUS %u: this kernel handles %u", expected, MAX_CPUS);
  record_lapic_id();
  uint64_t t0 = rdtsc();
  unsigned n = smp_start(record_lapic_id);
  uint64_t last = t0;
  for (unsigned i = 1; i < n; ++i) last = up_tsc[i] > last ? up_tsc[i] : last;
  report_info("AP bring-up: the last of %u APs ran C code %lu TSC cycles after the INIT", n - 1,
              last - t0);
  if (!report(n == expected, "%u of %u CPUs online after INIT/SIPI/SIPI (%s mode)", n, expected,
              x2 ? "x2APIC" : "xAPIC")) {
    return report_summary();
  }

  uint32_t ids = 0; /* the APIC IDs seen, as a bitmap of IDs < 32 */
  bool distinct = true;
  for (unsigned i = 0; i < n; ++i) {
    report(lapic_id[i] == cpus[i].apic_id, "CPU %u is up: LAPIC ID %u, CPUID APIC ID %u", i,
           lapic_id[i], cpus[i].apic_id);
    if (cpus[i].apic_id >= 32 || (ids & (1u << cpus[i].apic_id))) distinct = false;
    if (cpus[i].apic_id < 32) ids |= 1u << cpus[i].apic_id;
  }
  report(distinct, "the %u CPUs have distinct APIC IDs (below 32)", n);

  sti();
  uint32_t want = 0;
  for (unsigned i = 1; i < n; ++i) {
    want |= 1u << i;
    apic_send_ipi(cpus[i].apic_id, APIC_DM_FIXED | IPI_VECTOR);
    bool arrived = wait_until(seen[0][i] != 0);
    settle();
    report(arrived && counts_are(IPI_VECTOR, want, n),
           "fixed IPI 0x%x to APIC ID %u arrives at CPU %u only, once (count %u)", IPI_VECTOR,
           cpus[i].apic_id, i, seen[0][i]);
  }

  uint32_t aps = ((1u << n) - 1) & ~1u;
  apic_send_ipi(0, APIC_DEST_ALL_BUT_SELF | APIC_DM_FIXED | BROADCAST_VECTOR);
  bool all = wait_until(({
    bool done = true;
    for (unsigned i = 1; i < n; ++i) done &= seen[1][i] != 0;
    done;
  }));
  settle();
  report(all && counts_are(BROADCAST_VECTOR, aps, n),
         "all-but-self IPI 0x%x arrives once at each of the %u APs, not at the boot CPU",
         BROADCAST_VECTOR, n - 1);

  apic_send_ipi(0, APIC_DEST_SELF | APIC_DM_FIXED | SELF_VECTOR);
  wait_until(seen[2][0] != 0);
  settle();
  report(counts_are(SELF_VECTOR, 1, n), "self IPI 0x%x arrives once at the boot CPU only",
         SELF_VECTOR);
  cli();
  report(irq_unexpected() == 0, "no interrupt on an unexpected vector (%u)", irq_unexpected());
  return report_summary();
}
