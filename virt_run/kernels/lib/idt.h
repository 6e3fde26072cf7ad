/* idt.h: the IDT (256 stubs from vectors.S), per-vector handlers, per-CPU interrupt counts and
 * the *_safe() accessors that turn an exception into a return value. */
#pragma once

#include <stdint.h>

/* The stack at interrupt_dispatch: registers pushed by vectors.S, then the CPU's frame. */
struct frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*irq_handler)(struct frame *f);

/* Fills the IDT (once, on the boot CPU) and loads it on this CPU. */
void idt_init(void);
/* Loads the IDT on this CPU (APs). */
void idt_load(void);

/* Calls h for `vector` on every CPU, after this CPU's irq_count[vector] is incremented. The
 * handler EOIs itself if it wants to. Vectors >= 32 without a handler are counted in
 * irq_count, EOI'd and reported as unexpected by irq_unexpected(); an exception without a
 * handler (and not a *_safe() call) fails the test run visibly and exits. */
void idt_set_handler(unsigned vector, irq_handler h);

/* Interrupts that arrived on a vector with no handler, on all CPUs, since boot. */
uint32_t irq_unexpected(void);

/* rdmsr / wrmsr that return the exception vector they raised (13 for #GP), or -1. */
int rdmsr_safe(uint32_t msr, uint64_t *value);
int wrmsr_safe(uint32_t msr, uint64_t value);
