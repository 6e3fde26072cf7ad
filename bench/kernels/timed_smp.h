/* timed_smp.h: the TSC stamps timed_smp.c (the runtime's lib/smp.c with time stamps) records. */
#pragma once

#include <stdint.h>

#include "layout.h"

/* The boot CPU's TSC between the INIT and the first SIPI of smp_start(). */
extern volatile uint64_t smp_sipi_tsc;
/* Each AP's own TSC as it goes online (after its setup, just before it counts itself), by CPU
 * index; 0 for CPUs that did not come up. */
extern volatile uint64_t smp_online_tsc[MAX_CPUS];
