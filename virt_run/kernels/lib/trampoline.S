/* trampoline.S: the AP's first code after SIPI (vector 0: CS = 0, IP = 0, real mode). smp.c
 * copies trampoline_start..trampoline_end to page 0; it loads our GDT (its descriptor travels
 * with the copy, addressed CS-relative), sets CR0.PE and far-jumps to entry.S's ap_start32. */
#include "layout.h"

        .section .rodata.trampoline, "a"
        .code16
        .globl  trampoline_start, trampoline_end
trampoline_start:
        cli
        cld
        lgdtl   %cs:(trampoline_gdt_desc - trampoline_start)
        mov     %cr0, %eax
        or      $CR0_PE, %eax
        mov     %eax, %cr0
        ljmpl   $SEL_CODE32, $ap_start32
trampoline_gdt_desc:
        .word   GDT_SIZE - 1
        .long   gdt
trampoline_end:

        .section .note.GNU-stack, "", @progbits
