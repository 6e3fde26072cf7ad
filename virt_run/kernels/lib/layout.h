/* layout.h: constants shared by the runtime's assembly and C (selectors, stacks, CPU limits). */
#pragma once

#define MAX_CPUS 16
#define STACK_SHIFT 14 /* 16 KiB per CPU */
#define STACK_SIZE (1 << STACK_SHIFT)

/* GDT (entry.S): 0x08 64-bit code, 0x10 flat data, 0x18 flat 32-bit code (the AP trampoline's
 * far jump and the boot CPU's reload before long mode). */
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define GDT_SIZE 32

#define CR0_PE 0x1
#define CR0_NW 0x20000000
#define CR0_CD 0x40000000
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

/* Where the SIPI trampoline is copied: page 0, SIPI vector 0. */
#define TRAMPOLINE_ADDR 0x0
