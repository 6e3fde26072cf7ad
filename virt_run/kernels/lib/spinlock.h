/* spinlock.h: a test-and-set lock for the console, fw_cfg and the report counters. */
#pragma once

#include "x86.h"

struct spinlock {
  volatile int taken;
};

static inline void spin_lock(struct spinlock *l) {
  while (__atomic_exchange_n(&l->taken, 1, __ATOMIC_ACQUIRE)) {
    while (l->taken) pause();
  }
}
static inline void spin_unlock(struct spinlock *l) {
  __atomic_store_n(&l->taken, 0, __ATOMIC_RELEASE);
}
