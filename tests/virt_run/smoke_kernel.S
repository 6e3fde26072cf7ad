# A tiny multiboot v1 kernel for virt-run's real-hypervisor tests (32-bit, no paging).
# It checks the multiboot entry state (EAX magic, flat CS 0x08 / DS 0x10; QEMU's multiboot
# option ROM leaves them so too, and the kernel runs under qemu -kernel -device pc-testdev
# -device isa-debug-exit,iobase=0xf4,iosize=4), prints through COM1, then does what the first
# letter of its argument (the command line after argv[0]) says:
#   p pass (debug exit 0)        f fail (debug exit 1)        t triple fault (ud2, no IDT)
#   h hang (spin until --timeout) m print the --initrd module (with rep outsb)
#   u check that unclaimed ports and MMIO read all-ones (the contract; QEMU 7.2 reads
#     unassigned MMIO as 0, so this one fails there)         c print fw_cfg's CPU count and RAM
#   s check the MMIO scratch buffer and the port latch
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0
        .set COM1, 0x3f8

        .code32
        .text
        .globl _start
        .align 4
mb_header:
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

_start:
        mov $stack_top, %esp
        mov %ebx, mbi
        cmp $0x2BADB002, %eax
        jne bad_entry
        mov %cs, %ax
        cmp $0x08, %ax
        jne bad_entry
        mov %ds, %ax
        cmp $0x10, %ax
        jne bad_entry
        call serial_init
        mov $hello, %esi
        call puts
        # The argument: skip argv[0] up to the first space.
        mov mbi, %ebx
        testl $4, (%ebx)                # MULTIBOOT_INFO_CMDLINE
        jz bad_entry
        mov 16(%ebx), %esi
1:      lodsb
        test %al, %al
        jz cmd_pass
        cmp $' ', %al
        jne 1b
        lodsb
        cmp $'p', %al
        je cmd_pass
        cmp $'f', %al
        je cmd_fail
        cmp $'t', %al
        je cmd_triple
        cmp $'h', %al
        je cmd_hang
        cmp $'m', %al
        je cmd_module
        cmp $'u', %al
        je cmd_unclaimed
        cmp $'c', %al
        je cmd_cpus
        cmp $'s', %al
        je cmd_scratch
        jmp cmd_pass

cmd_pass:
        mov $pass_msg, %esi
        call puts
        xor %eax, %eax
        jmp debug_exit
cmd_fail:
        mov $1, %eax
        jmp debug_exit
cmd_triple:
        ud2
cmd_hang:
        jmp cmd_hang

cmd_module:
        mov mbi, %ebx
        testl $8, (%ebx)                # MULTIBOOT_INFO_MODS
        jz bad_entry
        cmpl $1, 20(%ebx)
        jne bad_entry
        mov 24(%ebx), %ebx              # mods_addr
        mov (%ebx), %esi                # mod_start
        mov 4(%ebx), %ecx
        sub %esi, %ecx                  # its length
        mov $COM1, %dx
        rep outsb                       # one string OUT of the whole module
        jmp cmd_pass

cmd_unclaimed:
        mov $0x1234, %dx
        inb %dx, %al
        cmp $0xff, %al
        jne bad_device
        inl %dx, %eax
        cmp $0xffffffff, %eax
        jne bad_device
        outb %al, %dx
        mov 0xd0000000, %eax            # above 128 MiB of RAM, below the MMIO window
        cmp $0xffffffff, %eax
        jne bad_device
        movl $0, 0xd0000000
        mov $unclaimed_msg, %esi
        call puts
        jmp cmd_pass

cmd_cpus:
        mov $cpus_msg, %esi
        call puts
        mov $0x05, %ax                  # NB_CPUS
        call fw_cfg_select
        call fw_cfg_byte
        movzx %al, %ecx
        call fw_cfg_byte
        movzx %al, %eax
        shl $8, %eax
        or %ecx, %eax
        call put_dec
        mov $ram_msg, %esi
        call puts
        mov $0x03, %ax                  # RAM_SIZE (u64; the low 32 bits suffice here)
        call fw_cfg_select
        xor %ebx, %ebx
        mov $0, %ecx
2:      call fw_cfg_byte
        movzx %al, %eax
        shl %cl, %eax
        or %eax, %ebx
        add $8, %cl
        cmp $32, %cl
        jne 2b
        mov %ebx, %eax
        shr $20, %eax                   # MiB
        call put_dec
        mov $newline, %esi
        call puts
        jmp cmd_pass

cmd_scratch:
        movl $0x12345678, 0xff000010
        cmpl $0x12345678, 0xff000010
        jne bad_device
        cmpw $0x5678, 0xff000010
        jne bad_device
        mov $0xe0, %dx
        mov $0xdeadbeef, %eax
        outl %eax, %dx
        mov $0xe1, %dx
        mov $0x42, %al
        outb %al, %dx
        mov $0xe0, %dx
        inl %dx, %eax
        cmp $0xdead42ef, %eax
        jne bad_device
        mov $scratch_msg, %esi
        call puts
        jmp cmd_pass

bad_entry:
        mov $2, %eax
        jmp debug_exit
bad_device:
        mov $bad_device_msg, %esi
        call puts
        mov $3, %eax
debug_exit:
        mov $0xf4, %dx
        outl %eax, %dx
        cli
3:      hlt
        jmp 3b

# Sets DLAB, writes divisor 1 (115200 baud), clears DLAB: the divisor must not be printed.
serial_init:
        mov $COM1 + 3, %dx
        mov $0x80, %al
        outb %al, %dx
        mov $COM1, %dx
        mov $0x01, %al
        outb %al, %dx
        mov $COM1 + 1, %dx
        xor %al, %al
        outb %al, %dx
        mov $COM1 + 3, %dx
        mov $0x03, %al
        outb %al, %dx
        ret

# putc: %al to COM1 once LSR says the transmitter is empty.
putc:
        push %edx
        push %eax
        mov $COM1 + 5, %dx
1:      inb %dx, %al
        test $0x20, %al
        jz 1b
        pop %eax
        mov $COM1, %dx
        outb %al, %dx
        pop %edx
        ret

# puts: the NUL-terminated string at %esi.
puts:
        push %eax
1:      lodsb
        test %al, %al
        jz 2f
        call putc
        jmp 1b
2:      pop %eax
        ret

# put_dec: %eax in decimal.
put_dec:
        push %ebx
        push %ecx
        push %edx
        mov $10, %ebx
        xor %ecx, %ecx
1:      xor %edx, %edx
        div %ebx
        push %edx
        inc %ecx
        test %eax, %eax
        jnz 1b
2:      pop %eax
        add $'0', %al
        call putc
        loop 2b
        pop %edx
        pop %ecx
        pop %ebx
        ret

fw_cfg_select:
        push %edx
        mov $0x510, %dx
        outw %ax, %dx
        pop %edx
        ret
fw_cfg_byte:
        push %edx
        mov $0x511, %dx
        inb %dx, %al
        pop %edx
        ret

        .data
hello:          .asciz "virt-run smoke kernel: entry state ok\n"
pass_msg:       .asciz "pass\n"
unclaimed_msg:  .asciz "unclaimed reads all-ones\n"
cpus_msg:       .asciz "cpus "
ram_msg:        .asciz " ram_mib "
newline:        .asciz "\n"
scratch_msg:    .asciz "scratch and latch ok\n"
bad_device_msg: .asciz "device check failed\n"

        .bss
        .align 16
mbi:    .long 0
        .space 4096
stack_top:
