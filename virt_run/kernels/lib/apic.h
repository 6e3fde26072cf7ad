/* apic.h: the local APIC in xAPIC mode (MMIO at 0xfee00000) or x2APIC mode (MSRs 0x800 +
 * reg / 16), chosen per CPU by apic_enable(). Register offsets are the xAPIC ones. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define APIC_BASE_ADDR 0xfee00000u
#define APIC_ID 0x20
#define APIC_VERSION 0x30
#define APIC_TPR 0x80
#define APIC_EOI 0xb0
#define APIC_LDR 0xd0
#define APIC_SVR 0xf0
#define APIC_ISR 0x100
#define APIC_TMR 0x180
#define APIC_IRR 0x200
#define APIC_ESR 0x280
#define APIC_ICR 0x300
#define APIC_ICR2 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_LVT_ERROR 0x370
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_CURRENT 0x390
#define APIC_TIMER_DIVIDE 0x3e0

#define APIC_SPURIOUS_VECTOR 0xff
#define APIC_LVT_MASKED (1u << 16)
#define APIC_TIMER_ONESHOT (0u << 17)
#define APIC_TIMER_PERIODIC (1u << 17)
#define APIC_TIMER_TSC_DEADLINE (2u << 17)
#define APIC_TIMER_DIVIDE_1 0xb

/* ICR fields. */
#define APIC_DM_FIXED 0x000
#define APIC_DM_INIT 0x500
#define APIC_DM_STARTUP 0x600
#define APIC_LEVEL_ASSERT 0x4000
#define APIC_DEST_SELF 0x40000
#define APIC_DEST_ALL 0x80000
#define APIC_DEST_ALL_BUT_SELF 0xc0000

#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_X2APIC (1u << 10)

/* Enables this CPU's LAPIC (APIC_BASE) in xAPIC or x2APIC mode, software-enabled with
 * spurious vector 0xff, TPR 0. x2APIC needs CPUID.1:ECX[21]: without it, returns false and
 * stays in xAPIC mode. */
bool apic_enable(bool x2apic);

uint32_t apic_read(unsigned reg);
void apic_write(unsigned reg, uint32_t value);
void apic_eoi(void);

/* This CPU's LAPIC ID register: xAPIC ID[31:24], or the 32-bit x2APIC ID. */
uint32_t apic_id(void);

/* Sends an IPI: `icr` is the low ICR word (vector, delivery mode, shorthand); `dest` the
 * physical APIC ID (ignored with a shorthand). */
void apic_send_ipi(uint32_t dest, uint32_t icr);

/* The LAPIC timer: mode APIC_TIMER_ONESHOT or APIC_TIMER_PERIODIC, divide by 1. */
void apic_timer_start(uint8_t vector, uint32_t mode, uint32_t count);
void apic_timer_stop(void);
