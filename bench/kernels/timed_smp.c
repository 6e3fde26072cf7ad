/* timed_smp.c: virt_run/kernels/lib/smp.c with time stamps, linked in its place: the same CPU
 * table, AP entry and INIT/SIPI/SIPI bring-up (keep them in step), plus the TSC reads of
 * timed_smp.h: the boot CPU's between the INIT and the first SIPI, each AP's as it goes online. */
#include "timed_smp.h"

#include "apic.h"
#include "cpu.h"
#include "fwcfg.h"
#include "idt.h"
#include "smp.h"
#include "wait.h"
#include "x86.h"

struct cpu cpus[MAX_CPUS];
volatile uint64_t smp_sipi_tsc;
volatile uint64_t smp_online_tsc[MAX_CPUS];

extern const char trampoline_start[], trampoline_end[];
extern volatile uint32_t next_cpu_index; /* entry.S: the next AP's index */

static volatile unsigned online = 1;
static void (*volatile ap_setup_hook)(void);
static volatile bool ap_x2apic;

void cpu_init_self(unsigned index) {
  struct cpu *c = &cpus[index];
  c->self = c;
  c->index = index;
  c->apic_id = cpuid(1, 0).b >> 24;
  c->fault_vector = -1;
  wrmsr(MSR_GS_BASE, (uint64_t)c);
}

unsigned smp_expected_cpus(void) { return (unsigned)fwcfg_read(FW_CFG_NB_CPUS, 2); }

unsigned cpu_count(void) { return online; }

/* The AP's C entry (entry.S ap_start64), on its own stack. */
void ap_main(unsigned index) {
  cpu_init_self(index);
  idt_load();
  apic_enable(ap_x2apic);
  if (ap_setup_hook) ap_setup_hook();
  smp_online_tsc[index] = rdtsc();
  __atomic_add_fetch(&online, 1, __ATOMIC_RELEASE);
  for (;;) sti_hlt();
}

unsigned smp_start(void (*ap_setup)(void)) {
  unsigned expected = smp_expected_cpus();
  if (expected > MAX_CPUS) expected = MAX_CPUS;
  ap_setup_hook = ap_setup;
  ap_x2apic = this_cpu()->x2apic;
  /* Page 0 is address 0: copy with rep movsb, which the compiler cannot reason about. */
  uint64_t n = trampoline_end - trampoline_start;
  void *dst = (void *)TRAMPOLINE_ADDR;
  const void *src = trampoline_start;
  asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");

  apic_send_ipi(0, APIC_DEST_ALL_BUT_SELF | APIC_DM_INIT | APIC_LEVEL_ASSERT);
  smp_sipi_tsc = rdtsc();
  apic_send_ipi(0, APIC_DEST_ALL_BUT_SELF | APIC_DM_STARTUP | (TRAMPOLINE_ADDR >> 12));
  apic_send_ipi(0, APIC_DEST_ALL_BUT_SELF | APIC_DM_STARTUP | (TRAMPOLINE_ADDR >> 12));
  wait_until(__atomic_load_n(&online, __ATOMIC_ACQUIRE) >= expected);
  return __atomic_load_n(&online, __ATOMIC_ACQUIRE);
}
