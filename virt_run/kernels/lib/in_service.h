/* in_service.h: whether the LAPIC holds a delivered interrupt in service until the guest's EOI.
 *
 * The architecture says it does: the ISR bit raises the processor priority (a lower-priority
 * vector waits) and the EOI write is what a level-triggered IOAPIC pin waits for. kvm_pvm does
 * not: its ISR reads 0, a lower-priority vector is delivered at once, and a level pin is EOI'd
 * at delivery, so a line still high then has been re-serviced (one more delivery pending) by
 * the time the handler runs. The level-triggered kernels allow that one late delivery, and
 * only there. */
#pragma once

#include <stdbool.h>

/* The vectors the probe uses; kernels must not use them. */
#define IN_SERVICE_HIGH_VECTOR 0xef
#define IN_SERVICE_LOW_VECTOR 0x2f

/* Sends this CPU a self-IPI on IN_SERVICE_HIGH_VECTOR and does not EOI it, then one on
 * IN_SERVICE_LOW_VECTOR: true if the low one waits for the EOI (in-service tracking), false
 * if it is delivered at once. Leaves both handled and EOI'd; interrupts as they were. */
bool apic_tracks_in_service(void);
