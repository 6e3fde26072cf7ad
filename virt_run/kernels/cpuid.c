/* cpuid.c: CPUID as the VMM set it, on every CPU. Options give the expectations: x2apic=0|1
 * (CPUID.1:ECX[21]; hidden, enabling x2APIC must #GP; shown, it must work and the x2APIC ID
 * must match), tsc_deadline=0|1 (CPUID.1:ECX[24]). Always: every CPU's APIC ID
 * (CPUID.1:EBX[31:24] and, where leaf 0xB exists, its EDX) is distinct and matches its LAPIC
 * ID register. */
#include "apic.h"
#include "cpu.h"
#include "idt.h"
#include "report.h"
#include "setup.h"
#include "smp.h"
#include "x86.h"

struct seen {
  uint32_t leaf1_ecx, leaf1_apic_id, leafb_edx, lapic_id;
  int x2apic_fault;   /* wrmsr_safe's result enabling x2APIC, when tried */
  bool x2apic_on;     /* apic_enable(true) worked */
  uint32_t x2apic_id; /* MSR 0x802 then */
};
static struct seen seen[MAX_CPUS];
static bool has_leaf_b;
static int x2apic_expected = -1; /* -1: not checked */

static void record(void) {
  struct seen *s = &seen[this_cpu()->index];
  struct cpuid l1 = cpuid(1, 0);
  s->leaf1_ecx = l1.c;
  s->leaf1_apic_id = l1.b >> 24;
  s->leafb_edx = has_leaf_b ? cpuid(0xb, 0).d : 0;
  s->lapic_id = apic_id();
  s->x2apic_fault = -1;
  if (x2apic_expected == 0) {
    s->x2apic_fault = wrmsr_safe(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_X2APIC);
  } else if (x2apic_expected == 1 && apic_enable(true)) {
    s->x2apic_on = true;
    s->x2apic_id = apic_id();
    apic_enable(false);
  }
}

static void expect_bit(const char *key, uint32_t bit, const char *name, unsigned n) {
  uint64_t want;
  if (!arg_u64(key, &want)) return;
  unsigned matching = 0;
  for (unsigned i = 0; i < n; ++i) matching += !!(seen[i].leaf1_ecx & bit) == !!want;
  report(matching == n, "%s: CPUID.1:ECX reads %lu on %u of %u CPUs", name, want, matching, n);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  uint64_t v;
  if (arg_u64("x2apic", &v)) x2apic_expected = v != 0;
  uint32_t max_leaf = cpuid(0, 0).a;
  has_leaf_b = max_leaf >= 0xb && cpuid(0xb, 0).b != 0;
  struct cpuid b = cpuid(0xb, 0);
  report_info("max basic leaf 0x%x; leaf 0xB.0 0x%x 0x%x 0x%x 0x%x", max_leaf, b.a, b.b, b.c, b.d);
  record();
  unsigned expected = smp_expected_cpus();
  unsigned n = smp_start(record);
  report(n == expected, "%u of %u CPUs online", n, expected);

  expect_bit("x2apic", CPUID1_ECX_X2APIC, "x2APIC (bit 21)", n);
  expect_bit("tsc_deadline", CPUID1_ECX_TSC_DEADLINE, "TSC-deadline (bit 24)", n);
  if (x2apic_expected == 0) {
    unsigned gp = 0;
    for (unsigned i = 0; i < n; ++i) gp += seen[i].x2apic_fault == 13;
    report(gp == n, "x2APIC hidden: enabling it (APIC_BASE.EXTD) raises #GP on %u of %u CPUs",
           gp, n);
  } else if (x2apic_expected == 1) {
    unsigned ok = 0;
    for (unsigned i = 0; i < n; ++i) ok += seen[i].x2apic_on && seen[i].x2apic_id == seen[i].leaf1_apic_id;
    report(ok == n, "x2APIC shown: enabled, its ID register matches CPUID on %u of %u CPUs", ok,
           n);
  }

  for (unsigned i = 0; i < n; ++i) {
    const struct seen *s = &seen[i];
    bool distinct = true;
    for (unsigned j = 0; j < i; ++j) distinct &= seen[j].leaf1_apic_id != s->leaf1_apic_id;
    report(distinct && s->lapic_id == s->leaf1_apic_id,
           "CPU %u: CPUID.1 APIC ID %u is distinct and equals its LAPIC ID %u", i,
           s->leaf1_apic_id, s->lapic_id);
    if (has_leaf_b) {
      report(s->leafb_edx == s->leaf1_apic_id, "CPU %u: CPUID.0xB:EDX x2APIC ID %u matches", i,
             s->leafb_edx);
    }
  }
  if (!has_leaf_b) report_skip("CPUID leaf 0xB is absent: no x2APIC IDs to compare");
  return report_summary();
}
