/* smp.h: bringing up the application processors with INIT/SIPI/SIPI. */
#pragma once

/* fw_cfg NB_CPUS: how many CPUs the VMM says the machine has. */
unsigned smp_expected_cpus(void);

/* Copies the trampoline to page 0 and sends INIT, then SIPI twice (vector 0), to all but self,
 * then waits (bounded) until smp_expected_cpus() CPUs are online. Each AP runs `ap_setup`
 * (may be null) with its per-CPU area, IDT and LAPIC ready (in the boot CPU's APIC mode), goes
 * online, then idles in sti; hlt taking interrupts. Returns the number of CPUs online,
 * the boot CPU included. Call once. */
unsigned smp_start(void (*ap_setup)(void));

/* CPUs online: 1 before smp_start(). cpus[0..cpu_count()-1] are valid. */
unsigned cpu_count(void);
