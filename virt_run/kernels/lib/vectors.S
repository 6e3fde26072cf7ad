/* vectors.S: one 16-byte IDT stub per vector and the common entry that saves the registers,
 * calls interrupt_dispatch(struct frame *) (idt.c) and returns with iretq. Each stub pushes its
 * own vector number, so the handler knows the vector from the IDT entry taken, never from the
 * APIC's in-service register (which some KVMs read back as 0). */
        .text
        .code64
interrupt_common:
        push    %rax
        push    %rbx
        push    %rcx
        push    %rdx
        push    %rsi
        push    %rdi
        push    %rbp
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, %rdi
        cld
        call    interrupt_dispatch
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rbp
        pop     %rdi
        pop     %rsi
        pop     %rdx
        pop     %rcx
        pop     %rbx
        pop     %rax
        add     $16, %rsp               /* vector, error code */
        iretq

        .align  16
        .globl  vector_stubs
vector_stubs:
        .set    vec, 0
        .rept   256
        .align  16
        /* The CPU pushes an error code for these exceptions; the others get a dummy 0. */
        .if !((vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30))
        pushq   $0
        .endif
        pushq   $vec
        jmp     interrupt_common        /* backward: its size is known here */
        .set    vec, vec + 1
        .endr
        .align  16
        .globl  vector_stubs_end
vector_stubs_end:                       /* kernel.lds checks: 256 * 16 bytes after vector_stubs */


        .section .note.GNU-stack, "", @progbits
