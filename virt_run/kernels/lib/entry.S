/* entry.S: the multiboot v1 header, the boot CPU's 32-bit entry, the switch to long mode (shared
 * with the APs, which arrive from trampoline.S) and the identity page tables and GDT it uses.
 *
 * Entry (multiboot): 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = the info. The
 * first 4 GiB are identity-mapped with 2 MiB pages (the top GiB, where the LAPIC, IOAPIC and
 * the MMIO scratch live, uncached). Each CPU gets a STACK_SIZE stack from `stacks`: the boot
 * CPU index 0, each AP the next index in the order it arrives (lock xadd on next_cpu_index).
 */
#include "layout.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

/* 32-bit protected mode, paging off -> long mode (compatibility) on our tables. Clobbers eax,
 * ecx, edx. Also clears CR0.CD/NW, which an AP has set after INIT. */
.macro ENTER_LONG_MODE
        mov     %cr4, %eax
        or      $CR4_PAE, %eax
        mov     %eax, %cr4
        mov     $pml4, %eax
        mov     %eax, %cr3
        mov     $MSR_EFER, %ecx
        rdmsr
        or      $EFER_LME, %eax
        wrmsr
        mov     %cr0, %eax
        and     $~(CR0_CD | CR0_NW), %eax
        or      $(CR0_PG | CR0_PE), %eax
        mov     %eax, %cr0
.endm

.macro LOAD_DATA_SEGMENTS
        mov     $SEL_DATA, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %fs
        mov     %ax, %gs
        mov     %ax, %ss
.endm

        .section .text.entry, "ax"
        .code32
        .globl  start
start:
        mov     %eax, mb_magic
        mov     %ebx, mb_info
        lgdt    gdt_desc
        ljmp    $SEL_CODE32, $1f
1:      LOAD_DATA_SEGMENTS
        ENTER_LONG_MODE
        ljmp    $SEL_CODE64, $bsp_start64

/* APs: trampoline.S far-jumps here with our GDT loaded and CR0.PE set. */
        .globl  ap_start32
ap_start32:
        LOAD_DATA_SEGMENTS
        ENTER_LONG_MODE
        ljmp    $SEL_CODE64, $ap_start64

        .code64
bsp_start64:
        lea     stacks + STACK_SIZE(%rip), %rsp
        xor     %ebp, %ebp
        mov     mb_magic(%rip), %edi
        mov     mb_info(%rip), %esi
        call    kernel_start
        jmp     halt_forever

ap_start64:
        mov     $1, %eax
        lock xadd %eax, next_cpu_index(%rip)
        cmp     $MAX_CPUS, %eax
        jae     halt_forever            /* no room: smp_start() sees next_cpu_index > MAX_CPUS */
        mov     %eax, %edi
        lea     1(%rax), %rdx
        shl     $STACK_SHIFT, %rdx
        lea     stacks(%rip), %rsp
        add     %rdx, %rsp
        xor     %ebp, %ebp
        call    ap_main

        .globl  halt_forever
halt_forever:
        cli
        hlt
        jmp     halt_forever

        .data
        .globl  next_cpu_index
        .align  4
next_cpu_index: .long 1
mb_magic:       .long 0
mb_info:        .long 0

        .align  4096
pml4:   .quad   pdpt + 3                /* present, writable */
        .fill   511, 8, 0
pdpt:
        .set    i, 0
        .rept   4
        .quad   pd + i * 4096 + 3
        .set    i, i + 1
        .endr
        .fill   508, 8, 0
pd:                                     /* 2048 2 MiB pages: the first 4 GiB */
        .set    i, 0
        .rept   2048
        .if     i >= 1536
        .quad   (i << 21) | 0x9b        /* present, writable, PWT, PCD, 2 MiB */
        .else
        .quad   (i << 21) | 0x83        /* present, writable, 2 MiB */
        .endif
        .set    i, i + 1
        .endr

        .align  16
        .globl  gdt
gdt:    .quad   0
        .quad   0x00af9b000000ffff      /* SEL_CODE64 */
        .quad   0x00cf93000000ffff      /* SEL_DATA */
        .quad   0x00cf9b000000ffff      /* SEL_CODE32 */
gdt_end:
        .if     gdt_end - gdt != GDT_SIZE
        .error  "GDT_SIZE does not match the GDT"
        .endif
gdt_desc:
        .word   GDT_SIZE - 1
        .quad   gdt

        .bss
        .align  16
        .globl  stacks
stacks: .skip   STACK_SIZE * MAX_CPUS

        .section .note.GNU-stack, "", @progbits
