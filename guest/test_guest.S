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
 *      interrupt reports its vector to VECTOR_PORT, EOIs, resets the stack and jumps back to
 *      the wait loop. The vector comes from the IDT entry taken (one 8-byte stub per vector
 *      loads its own number), never from reading the APIC back: a paravirtualised KVM may
 *      deliver on the right vector yet read the in-service register as 0. An exception
 *      (vector < 32) reports EXCEPTION_BASE + vector and is not EOI'd. It never IRETs: on AMD
 *      hosts an IRET right after an emulated xAPIC access can fail KVM's emulator;
 *      mode 2: spins forever without exits (for cancellation tests);
 *      mode 3: loops `out %al, $LOOP_PORT` forever, one PIO exit per iteration (for the
 *      exit round-trip benchmark);
 *      mode 4: as mode 1, then executes `ud2` right after READY_PORT (the handler reports
 *      EXCEPTION_BASE + 6, then the guest waits for interrupts as in mode 1);
 *      mode 5: executes CPUID leaf 1 and writes EBX, then ECX, then EDX (4 bytes each) to
 *      CPUID_PORT, then cli; hlt (for tests of the CPUID the VMM set);
 *      mode 6: the doorbell loop: enables its APIC, reads N with a 4-byte IN from COUNT_PORT,
 *      then N times writes the ring number (4 bytes) to DOORBELL_ADDR and waits with sti; hlt
 *      for an interrupt, whose handler EOIs without any port access; after the N-th interrupt
 *      it writes N to VECTOR_PORT and halts. With a doorbell on DOORBELL_ADDR and a device
 *      that answers each ring with an MSI, the loop makes no exit at all;
 *      mode 7: the snapshot workload, for one or more vCPUs at once (the VMM starts each at the
 *      image's entry, answering MODE_PORT with 7 and ID_PORT with the vCPU's index n): turns
 *      on SSE/AVX state (CR4.OSFXSR/OSXSAVE, XCR0 = 7) without executing a vector instruction,
 *      so the x87/SSE/AVX registers keep whatever the VMM put there (some KVMs run parts of a
 *      guest in their instruction emulator, which has no AVX); starts the LAPIC timer
 *      (periodic, vector TIMER_VECTOR), says READY_PORT, then loops forever incrementing
 *      COUNTERS + 4n. Interrupts: the timer increments TICKS + 4n; any other vector v is
 *      recorded at TAKEN + 4n; both EOI and restart the loop (registers other than ebx/ebp
 *      carry nothing across). Its own 2 KiB of stack per vCPU;
 *      mode 8: the port doorbell loop, for benchmarks: enables its APIC, then forever writes the
 *      ring number (4 bytes) to DOORBELL_PORT and waits with sti; hlt for an interrupt (EOI'd
 *      without any port access), ringing again after each one, until an interrupt on
 *      STOP_VECTOR: then it writes the number of rings answered to VECTOR_PORT and halts. With
 *      a doorbell on DOORBELL_PORT the loop makes no exit; without one each ring is a PIO exit;
 *      mode 9: the dirty-page writer, for benchmarks: forever writes the round number to the
 *      first word of DIRTY_PAGES pages, DIRTY_STRIDE apart from DIRTY_BASE, then reports the
 *      round with a 4-byte OUT to DIRTY_PORT.
 *
 * Layout: the image (code, then the 256 stubs) must end below IDT_BASE; `.org` at the end makes
 * the build fail if it ever grows past it. Stack below STACK_TOP.
 */
        .set HELLO_PORT,  0x10
        .set MODE_PORT,   0x11
        .set ECHO_PORT,   0x12
        .set READY_PORT,  0x13
        .set VECTOR_PORT, 0x14
        .set LOOP_PORT,   0x15
        .set CPUID_PORT,  0x16
        .set COUNT_PORT,  0x17
        .set ID_PORT,     0x18
        .set DOORBELL_PORT, 0x19
        .set DIRTY_PORT,  0x1a
        .set STOP_VECTOR, 0x41
        .set DIRTY_BASE,  0x40000000
        .set DIRTY_PAGES, 1024
        .set DIRTY_STRIDE, 0x100000
        .set COUNTERS,    0x6000
        .set TICKS,       0x6040
        .set TAKEN,       0x6080
        .set TIMER_VECTOR, 0x80
        .set APIC_LVT_TIMER, 0xfee00320
        .set APIC_TIMER_INIT, 0xfee00380
        .set APIC_TIMER_DIV, 0xfee003e0
        .set DOORBELL_ADDR, 0xd0001000
        .set MMIO_ADDR,   0xd0000000
        .set LOAD_ADDR,   0x1000
        .set IDT_BASE,    0x3000
        .set STACK_TOP,   0x9000
        .set APIC_SVR,    0xfee000f0
        .set APIC_EOI,    0xfee000b0
        .set EXCEPTION_BASE, 0x100
        .set STUB_SIZE,   8

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

        /* 256 32-bit interrupt gates, gate n to stub n. */
        mov     $IDT_BASE, %edi
        mov     $256, %ecx
        mov     $stubs, %eax
fill_idt:
        mov     %eax, %edx
        shr     $16, %edx
        mov     %ax, (%edi)
        movw    $0x08, 2(%edi)
        movw    $0x8e00, 4(%edi)
        mov     %dx, 6(%edi)
        add     $8, %edi
        add     $STUB_SIZE, %eax
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
        cmp     $4, %ebx
        je      interrupts
        cmp     $5, %ebx
        je      report_cpuid
        cmp     $6, %ebx
        je      doorbells
        cmp     $7, %ebx
        je      snapshot
        cmp     $8, %ebx
        je      port_doorbells
        cmp     $9, %ebx
        je      dirty_pages
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

report_cpuid:
        mov     $1, %eax
        xor     %ecx, %ecx
        cpuid
        mov     %edx, %esi
        mov     $CPUID_PORT, %dx
        mov     %ebx, %eax
        out     %eax, %dx
        mov     %ecx, %eax
        out     %eax, %dx
        mov     %esi, %eax
        out     %eax, %dx
        cli
        hlt
        jmp     .

interrupts:
        movl    $0x1ff, APIC_SVR        /* APIC software-enabled, spurious vector 0xff */
        mov     $READY_PORT, %dx
        out     %al, %dx
        cmp     $4, %ebx
        jne     idle
        ud2                             /* #UD: vector 6, reported as an exception */
idle:
        mov     $STACK_TOP, %esp
        sti
        hlt
        jmp     idle

doorbells:
        movl    $0x1ff, APIC_SVR
        mov     $COUNT_PORT, %dx
        in      %dx, %eax
        mov     %eax, %esi              /* N */
        xor     %edi, %edi              /* interrupts taken */
ring:
        cmp     %esi, %edi
        je      rung
        mov     %edi, DOORBELL_ADDR
wait_irq:
        mov     $STACK_TOP, %esp
        sti
        hlt
        jmp     wait_irq                /* woken without an interrupt: wait again, no ring */
rung:
        mov     %edi, %eax
        mov     $VECTOR_PORT, %dx
        out     %eax, %dx
        cli
        hlt
        jmp     .

snapshot:
        movl    $0x1ff, APIC_SVR
        mov     $ID_PORT, %dx
        in      %dx, %eax
        mov     %eax, %ebp              /* n */
        mov     %ebp, %eax
        shl     $11, %eax
        mov     $STACK_TOP, %esp
        sub     %eax, %esp              /* 2 KiB of stack each */
        mov     %cr0, %eax
        and     $~4, %eax               /* EM off */
        or      $2, %eax                /* MP on */
        mov     %eax, %cr0
        mov     %cr4, %eax
        or      $((1 << 9) | (1 << 10) | (1 << 18)), %eax  /* OSFXSR, OSXMMEXCPT, OSXSAVE */
        mov     %eax, %cr4
        xor     %ecx, %ecx
        xor     %edx, %edx
        mov     $7, %eax                /* XCR0: x87, SSE, AVX */
        xsetbv
        movl    $0xb, APIC_TIMER_DIV    /* divide by 1 */
        movl    $(0x20000 | TIMER_VECTOR), APIC_LVT_TIMER  /* periodic */
        movl    $0x200000, APIC_TIMER_INIT
        mov     $READY_PORT, %dx
        out     %al, %dx
snapshot_loop:
        mov     %ebp, %eax
        shl     $11, %eax
        mov     $STACK_TOP, %esp
        sub     %eax, %esp
        sti
count:
        incl    COUNTERS(,%ebp,4)
        jmp     count

port_doorbells:
        movl    $0x1ff, APIC_SVR
        xor     %edi, %edi              /* rings answered */
port_ring:
        mov     %edi, %eax
        mov     $DOORBELL_PORT, %dx
        out     %eax, %dx
port_wait:
        mov     $STACK_TOP, %esp
        sti
        hlt
        jmp     port_wait               /* woken without an interrupt: wait again, no ring */

dirty_pages:
        xor     %edi, %edi              /* round */
dirty_round:
        mov     $DIRTY_BASE, %esi
        mov     $DIRTY_PAGES, %ecx
dirty_write:
        mov     %edi, (%esi)
        add     $DIRTY_STRIDE, %esi
        loop    dirty_write
        mov     %edi, %eax
        mov     $DIRTY_PORT, %dx
        out     %eax, %dx
        inc     %edi
        jmp     dirty_round

handler:
        /* %al: the vector, from the stub. */
        cmp     $6, %ebx
        je      doorbell_irq
        cmp     $7, %ebx
        je      snapshot_irq
        cmp     $8, %ebx
        je      port_doorbell_irq
        movzbl  %al, %eax
        cmp     $32, %eax
        jb      exception
        mov     $VECTOR_PORT, %dx
        out     %eax, %dx
        movl    $0, APIC_EOI
        jmp     idle
snapshot_irq:
        movzbl  %al, %eax
        cmp     $TIMER_VECTOR, %eax
        jne     1f
        incl    TICKS(,%ebp,4)
        jmp     2f
1:      mov     %eax, TAKEN(,%ebp,4)
2:      movl    $0, APIC_EOI
        jmp     snapshot_loop

doorbell_irq:
        movl    $0, APIC_EOI
        inc     %edi
        mov     $STACK_TOP, %esp
        jmp     ring
port_doorbell_irq:
        movl    $0, APIC_EOI
        cmp     $STOP_VECTOR, %al
        je      port_stop
        inc     %edi
        jmp     port_ring
port_stop:
        mov     %edi, %eax
        mov     $VECTOR_PORT, %dx
        out     %eax, %dx
        cli
        hlt
        jmp     .
exception:
        add     $EXCEPTION_BASE, %eax
        mov     $VECTOR_PORT, %dx
        out     %eax, %dx
        jmp     idle

        .p2align 3
/* The descriptors come with their accessed bits set, so loading them never writes the image
   (a dirty-log test expects the guest to write only its IDT, data and stack pages). */
gdt:
        .quad   0
        .quad   0x00cf9b000000ffff      /* 0x08: code, base 0, 4 GiB, 32-bit */
        .quad   0x00cf93000000ffff      /* 0x10: data, base 0, 4 GiB */
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

        /* Stub n: `mov $n, %al; jmp handler`, padded to STUB_SIZE bytes. */
        .p2align 3
stubs:
        .set    vec, 0
        .rept   256
        .p2align 3
        mov     $vec, %al
        jmp     handler
        .set    vec, vec + 1
        .endr

        /* Fails to assemble if the image would reach the IDT. */
        .org    IDT_BASE - LOAD_ADDR
