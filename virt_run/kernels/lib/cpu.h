/* cpu.h: the per-CPU area (found through GS, %gs:0 points to itself) and the CPU table. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

struct cpu {
  struct cpu *self;    /* %gs:0 */
  uint32_t index;      /* 0 = the boot CPU; APs in the order they came up */
  uint32_t apic_id;    /* initial APIC ID, CPUID.1:EBX[31:24] */
  bool x2apic;         /* this CPU's LAPIC is in x2APIC mode (apic.c) */
  volatile int32_t fault_vector;        /* the exception a *_safe() call took, or -1 */
  volatile uint32_t irq_count[256];     /* interrupts taken on this CPU, by IDT vector */
};

extern struct cpu cpus[MAX_CPUS];

static inline struct cpu *this_cpu(void) {
  struct cpu *c;
  asm volatile("mov %%gs:0, %0" : "=r"(c));
  return c;
}

/* Makes cpus[index] this CPU's per-CPU area (MSR_GS_BASE). Called first on every CPU. */
void cpu_init_self(unsigned index);
