/* first_out.S: the "first guest instruction" benchmark kernel. Its very first instructions write
 * one byte, a newline, to COM1 (0x3f8), so the moment that byte reaches the VMM's stdout is the
 * moment the guest began to run; then it exits through the debug-exit port with code 0 (the
 * VMM's status is 1). No runtime, no long mode: a multiboot v1 header and six instructions.
 *
 * The byte is a newline because virt-run's console flushes per line, as a line-buffered stdout
 * would: any other first byte would wait in its buffer for the exit. QEMU writes each byte. */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

        .text
        .code32
        .globl  start
start:
        mov     $0x3f8, %dx
        mov     $'\n', %al
        out     %al, %dx
        mov     $0xf4, %dx
        xor     %eax, %eax
        out     %eax, %dx
1:      cli                             /* no debug-exit device: stop here */
        hlt
        jmp     1b

        .section .note.GNU-stack, "", @progbits
