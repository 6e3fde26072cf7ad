/* wait.h: bounded waits, so a lost interrupt fails a check visibly instead of hanging the run. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "x86.h"

/* The bound of wait_until: about a second at common TSC rates (1-4 GHz). Only a failing check
 * waits this long. */
#define WAIT_TSC_CYCLES (3ull << 30)

/* Evaluates `cond` (with pause in between) until it is true or WAIT_TSC_CYCLES pass; yields
 * its last value. Interrupts are taken only if the caller enabled them. */
#define wait_until(cond)                                                   \
  ({                                                                       \
    uint64_t wait_start_ = rdtsc();                                        \
    bool wait_ok_;                                                         \
    while (!(wait_ok_ = (cond)) && rdtsc() - wait_start_ < WAIT_TSC_CYCLES) \
      pause();                                                             \
    wait_ok_;                                                              \
  })

/* Runs with interrupts enabled through 64 VM exits (UART status reads), so an interrupt that
 * is already pending for this CPU has been delivered when it returns. Leaves IF as it was. */
void settle(void);
