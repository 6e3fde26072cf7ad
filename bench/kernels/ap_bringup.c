/* ap_bringup.c: the AP bring-up benchmark kernel. Brings up every AP (fw_cfg NB_CPUS) with
 * smp_start(): INIT, then SIPI, SIPI to all but self. timed_smp.c (linked in place of the
 * runtime's smp.c) reads the boot CPU's TSC between the INIT and the first SIPI, and each AP's
 * own TSC as it goes online (long mode, per-CPU area, IDT and LAPIC set up). Prints
 *   INFO: ap_bringup: 3 APs; TSC cycles from the first SIPI: first=A last=B seen=C
 * A and B: the first and the last AP online by its own TSC; C: when the boot CPU, spinning on
 * the count, saw them all. The APs print nothing while they come up (a console line per AP
 * would be dozens of exits each, competing for the host's CPUs). Checks that every CPU came up
 * and that no AP's TSC reads before the SIPI (the TSCs are synchronised, as KVM keeps them for
 * vCPUs created together). Options: cpus=N (expected CPUs). */
#include "report.h"
#include "setup.h"
#include "smp.h"
#include "timed_smp.h"
#include "x86.h"

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  const unsigned expected = smp_expected_cpus();
  uint64_t want;
  if (arg_u64("cpus", &want)) {
    report(expected == want, "fw_cfg NB_CPUS is %u (expected %lu)", expected, want);
  }
  if (expected > MAX_CPUS) report_abort("NB_CPUS %u: this kernel handles %u", expected, MAX_CPUS);
  if (expected < 2) {
    report_skip("ap_bringup: one CPU, no AP to start");
    return report_summary();
  }

  const unsigned n = smp_start(0);
  const uint64_t seen = rdtsc();
  if (!report(n == expected, "%u of %u CPUs online after INIT/SIPI/SIPI", n, expected)) {
    return report_summary();
  }
  uint64_t first = UINT64_MAX, last = 0;
  bool after_sipi = true;
  for (unsigned i = 1; i < n; ++i) {
    const uint64_t t = smp_online_tsc[i];
    if (t < smp_sipi_tsc) after_sipi = false;
    first = t < first ? t : first;
    last = t > last ? t : last;
  }
  if (!report(after_sipi, "every AP's TSC at online reads after the boot CPU's at the SIPI")) {
    return report_summary();
  }
  report_info("ap_bringup: %u APs; TSC cycles from the first SIPI: first=%lu last=%lu seen=%lu",
              n - 1, first - smp_sipi_tsc, last - smp_sipi_tsc, seen - smp_sipi_tsc);
  return report_summary();
}
