/* test_guest.S: the tiny 32-bit protected-mode guest the real-KVM tests and virt-demo run.
 *
 * Loaded at 0x1000 and entered in flat 32-bit protected mode (set up by the host, see
 * test_guest.h). It:
 *   1. writes "hello from the guest\n" to HELLO_PORT, one byte per OUT;
 *   2. reads its mode with a 4-byte IN from MODE_PORT (the host completes it);
 *   3. reads 4 bytes from the unmapped MMIO_ADDR (the host completes it) and echoes them to
 *      ECHO_PORT;
 *   4. mode 0: cli; hlt (a HaltExit when the partition has no in-kernel irqchip);
 *      mode 1: enables its local APIC, says READY_PORT, then waits with sti; hlt. Each
 *      interrupt reports its vector (found in the APIC in-service register) to VECTOR_PORT,
 *      EOIs, resets the stack and jumps back to the wait loop. It never IRETs: on AMD hosts an
 *      IRET right after an emulated xAPIC access can fail KVM's emulator;
 *      mode 2: spins forever without exits (for cancellation tests);
 *      mode 3: loops `out %al, $LOOP_PORT` forever, one PIO exit per iteration (for the
 *      exit round-trip benchmark).
 */
        .set HELLO_PORT,  0x10
        .set MODE_PORT,   0x11
        .set ECHO_PORT,   0x12
        .set READY_PORT,  0x13
        .set VECTOR_PORT, 0x14
        .set LOOP_PORT,   0x15
        .set MMIO_ADDR,   0xd0000000
        .set IDT_BASE,    0x2000
        .set STACK_TOP,   0x9000
        .set APIC_SVR,    0xfee000f0
        .set APIC_EOI,    0xfee000b0
        .set APIC_ISR,    0xfee00100
        .set NO_VECTOR,   0x100

        .code32
        .text
        .globl _start
_start:
        lgdt    gdt_desc
        ljmp    $0x08, $reload
reload:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %fs
        mov     %ax, %gs
        mov     %ax, %ss
        mov     $STACK_TOP, %esp

        /* 256 32-bit interrupt gates, all to `handler`. */
        mov     $IDT_BASE, %edi
        mov     $256, %ecx
        mov     $handler, %eax
        mov     %eax, %edx
        shr     $16, %edx
fill_idt:
        mov     %ax, (%edi)
        movw    $0x08, 2(%edi)
        movw    $0x8e00, 4(%edi)
        mov     %dx, 6(%edi)
        add     $8, %edi
        loop    fill_idt
        lidt    idt_desc

        /* 1. hello */
        mov     $hello, %esi
        mov     $(hello_end - hello), %ecx
        mov     $HELLO_PORT, %dx
say_hello:
        lodsb
        out     %al, %dx
        loop    say_hello

        /* 2. mode */
        mov     $MODE_PORT, %dx
        in      %dx, %eax
        mov     %eax, %ebx

        /* 3. MMIO read, echoed */
        mov     MMIO_ADDR, %eax
        mov     $ECHO_PORT, %dx
        out     %eax, %dx

        cmp     $1, %ebx
        je      interrupts
        cmp     $2, %ebx
        je      spin
        cmp     $3, %ebx
        je      out_loop
        cli
        hlt
        jmp     .

spin:
        mov     $READY_PORT, %dx        /* "spinning now": a cancel can only land in the loop */
        out     %al, %dx
spin_loop:
        jmp     spin_loop

out_loop:
        out     %al, $LOOP_PORT
        jmp     out_loop

interrupts:
        movl    $0x1ff, APIC_SVR        /* APIC software-enabled, spurious vector 0xff */
        mov     $READY_PORT, %dx
        out     %al, %dx
idle:
        mov     $STACK_TOP, %esp
        sti
        hlt
        jmp     idle

handler:
        /* The in-service vector is the highest set bit of ISR words 7..0. */
        mov     $7, %ecx
find_isr:
        mov     %ecx, %edx
        shl     $4, %edx
        mov     APIC_ISR(%edx), %eax
        test    %eax, %eax
        jnz     found
        dec     %ecx
        jns     find_isr
        mov     $NO_VECTOR, %eax        /* an exception, not an APIC interrupt */
        mov     $VECTOR_PORT, %dx
        out     %eax, %dx
        jmp     idle
found:
        bsr     %eax, %eax
        shl     $5, %ecx
        add     %ecx, %eax
        mov     $VECTOR_PORT, %dx
        out     %eax, %dx
        movl    $0, APIC_EOI
        jmp     idle

        .p2align 3
gdt:
        .quad   0
        .quad   0x00cf9a000000ffff      /* 0x08: code, base 0, 4 GiB, 32-bit */
        .quad   0x00cf92000000ffff      /* 0x10: data, base 0, 4 GiB */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt
idt_desc:
        .word   256 * 8 - 1
        .long   IDT_BASE
hello:
        .ascii  "hello from the guest\n"
hello_end:
