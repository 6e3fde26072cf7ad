/* idt.c: the IDT, the C side of the interrupt path, and the exception fixups for *_safe(). */
#include "idt.h"

#include "apic.h"
#include "console.h"
#include "cpu.h"
#include "layout.h"
#include "report.h"
#include "x86.h"

struct idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist;
  uint8_t type; /* 0x8e: present, DPL 0, 64-bit interrupt gate */
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t reserved;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler handlers[256];
static volatile uint32_t unexpected;

extern char vector_stubs[];

/* (faulting rip, resume rip) pairs emitted by the *_safe() accessors. */
struct fixup {
  uint64_t fault, resume;
};
extern const struct fixup __fixup_start[], __fixup_end[];

void idt_init(void) {
  for (unsigned v = 0; v < 256; ++v) {
    uint64_t addr = (uint64_t)(vector_stubs + v * 16);
    idt[v] = (struct idt_gate){
        .offset_lo = (uint16_t)addr,
        .selector = SEL_CODE64,
        .type = 0x8e,
        .offset_mid = (uint16_t)(addr >> 16),
        .offset_hi = (uint32_t)(addr >> 32),
    };
  }
  idt_load();
}

void idt_load(void) {
  struct {
    uint16_t limit;
    uint64_t base;
  } __attribute__((packed)) desc = {sizeof idt - 1, (uint64_t)idt};
  asm volatile("lidt %0" : : "m"(desc));
}

void idt_set_handler(unsigned vector, irq_handler h) { handlers[vector & 0xff] = h; }

uint32_t irq_unexpected(void) { return unexpected; }

static const char *exception_name(unsigned v) {
  static const char *const names[32] = {
      "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
      "#NP", "#SS", "#GP", "#PF", "15",  "#MF", "#AC", "#MC", "#XM", "#VE", "#CP"};
  return v < 32 && names[v] ? names[v] : "exception";
}

void interrupt_dispatch(struct frame *f) {
  struct cpu *c = this_cpu();
  unsigned v = f->vector & 0xff;
  ++c->irq_count[v];
  if (handlers[v]) {
    handlers[v](f);
    return;
  }
  if (v >= 32) {
    __atomic_add_fetch(&unexpected, 1, __ATOMIC_RELAXED);
    if (v != APIC_SPURIOUS_VECTOR) apic_eoi();
    return;
  }
  for (const struct fixup *x = __fixup_start; x < __fixup_end; ++x) {
    if (x->fault == f->rip) {
      c->fault_vector = (int32_t)v;
      f->rip = x->resume;
      return;
    }
  }
  uint64_t cr2;
  asm volatile("mov %%cr2, %0" : "=r"(cr2));
  console_break_lock();
  report(false, "unexpected %s (vector %u) on CPU %u at RIP 0x%lx, error code 0x%lx, CR2 0x%lx",
         exception_name(v), v, c->index, f->rip, f->error_code, cr2);
  exit(report_summary());
}

/* The fixup table entry for the instruction at local label 1 (resume at label 2). */
#define FIXUP_ENTRY ".pushsection .fixup_table, \"a\"\n .quad 1b, 2b\n .popsection\n"

int rdmsr_safe(uint32_t msr, uint64_t *value) {
  uint32_t lo = 0, hi = 0;
  this_cpu()->fault_vector = -1;
  asm volatile("1: rdmsr\n2:\n" FIXUP_ENTRY : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
  *value = lo | (uint64_t)hi << 32;
  return this_cpu()->fault_vector;
}

int wrmsr_safe(uint32_t msr, uint64_t value) {
  this_cpu()->fault_vector = -1;
  asm volatile("1: wrmsr\n2:\n" FIXUP_ENTRY
               :
               : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32))
               : "memory");
  return this_cpu()->fault_vector;
}
