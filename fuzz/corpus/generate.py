#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/: real encodings and messages built
field by field from the ABI layouts (nothing downloaded). Run from anywhere:
    python3 fuzz/corpus/generate.py
Re-running rewrites the same files."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# ---- fuzz_x86_mmio_decoder: [mode: 0 real16, 1 protected32, 2 long64] + instruction bytes ----
MMIO = {
    "mov_m32_ecx": (2, "89 08"),
    "mov_eax_rip_rel": (2, "8b 05 00 10 00 00"),
    "mov_m64_imm32_rexw": (2, "48 c7 00 78 56 34 12"),
    "mov_m16_cx": (2, "66 89 08"),
    "movzx_eax_m8": (2, "0f b6 00"),
    "movsx_rax_m16": (2, "48 0f bf 00"),
    "mov_eax_moffs64": (2, "a1 00 00 e0 fe 00 00 00 00"),
    "mov_m8_ah": (1, "88 20"),
    "mov_m8_sil_rex": (2, "40 88 30"),
    "mov_m8_imm8_sib_disp8": (2, "c6 44 24 08 ff"),
    "mov_r9_m64_sib_disp32": (2, "4c 8b 8c 24 00 01 00 00"),
    "mov_eax_m32_addr16": (0, "66 8b 07"),
    "mov_m32_imm32_disp32": (1, "c7 05 00 00 e0 fe 01 00 00 00"),
    "seg_lock_prefixes": (2, "64 f0 89 08"),
    "addr32_in_long": (2, "67 8b 00"),
    "register_form_rejected": (2, "89 c1"),
    "truncated_sib": (2, "89 04"),
}
for name, (mode, hexbytes) in MMIO.items():
    write("fuzz_x86_mmio_decoder", name, [mode] + [int(b, 16) for b in hexbytes.split()] + [0x11] * 17)

# ---- fuzz_msi_message: address u64, data u32, APIC ID, vector ----
MSI = {
    "fixed_apic0_v30": (0xFEE00000, 0x0030, 0, 0x30),
    "logical_rh_lowest": (0xFEE0F00C, 0x0141, 1, 0x41),
    "level_assert_nmi": (0xFEE01000, 0xC400, 2, 0xFF),
    "x2apic_ext_dest": ((0x12345600 << 32) | 0xFEE78000, 0x0041, 255, 0x20),
    "reserved_mode3": (0xFEE00000, 0x0300, 0, 0),
    "outside_window": (0xFED00000, 0x0030, 0, 0),
}
for name, (addr, data, apic, vec) in MSI.items():
    write("fuzz_msi_message", name, struct.pack("<QIBB", addr, data, apic, vec))


# ---- fuzz_mshv_message: one 256-byte hv_message ----
def intercept_header(length, access, exec_state, cs_attr, rip):
    # vp_index u32, instruction_length_cr8 u8, access u8, execution_state u16,
    # cs {base u64, limit u32, selector u16, attributes u16}, rip u64, rflags u64 = 40 bytes
    return struct.pack("<IBBHQIHHQQ", 0, length & 0xF, access, exec_state, 0, 0xFFFFFFFF, 0x08,
                       cs_attr, rip, 0x2)


def hv_message(msg_type, payload, payload_size=None):
    size = len(payload) if payload_size is None else payload_size
    m = struct.pack("<IBBHQ", msg_type, size, 0, 0, 0) + payload
    return m + bytes(256 - len(m))


LONG = (1 << 2) | (1 << 4), (1 << 13)
PROT32 = (1 << 2), (1 << 14)
io_out = intercept_header(2, 1, *LONG, 0x1000) + struct.pack("<HBBIQ", 0x3F8, 0x1, 2, 0, 0x41) \
    + bytes([0xEE, 0x90] + [0] * 14) + bytes(16 * 2) + struct.pack("<QQQ", 0, 0, 0)
io_in4 = intercept_header(1, 0, *PROT32, 0x2000) + struct.pack("<HBBIQ", 0x511, 0x4, 1, 0, 0) \
    + bytes([0xED] + [0] * 15) + bytes(16 * 2) + struct.pack("<QQQ", 0, 0, 0)
mem = lambda access, gpa, insn, state: intercept_header(0, access, *state, 0x3000) \
    + struct.pack("<IBBBBQQ", 0, len(insn), 0, 0, 0, 0, gpa) + bytes(insn + [0] * (16 - len(insn)))
cpuid = intercept_header(2, 0, *LONG, 0x4000) + struct.pack("<8Q", 1, 0, 0, 0, 0x906ED, 0, 0xBFEBFBFF, 0)
MSHV = {
    "io_out_com1": hv_message(0x80010000, io_out),
    "io_in_fwcfg_4": hv_message(0x80010000, io_in4),
    "unmapped_gpa_write": hv_message(0x80000000, mem(1, 0xFEE000B0, [0x89, 0x08], LONG)),
    "gpa_intercept_read": hv_message(0x80000001, mem(0, 0xFF000000, [0x8B, 0x05, 0, 0, 0, 0], PROT32)),
    "unmapped_gpa_execute": hv_message(0x80000000, mem(2, 0xC0000000, [], LONG)),
    "cpuid_leaf1": hv_message(0x80010002, cpuid),
    "halt": hv_message(0x80010007, b""),
    "timer": hv_message(0x80000010, b""),
    "io_short_payload": hv_message(0x80010000, io_out, 64),
}
for name, m in MSHV.items():
    write("fuzz_mshv_message", name, m)


# ---- fuzz_whp_exit: consecutive 224-byte WHV_RUN_VP_EXIT_CONTEXTs ----
def whp_exit(reason, body, rip=0x1000, length=2, long_mode=True, answer=1, rflags=0x12345678):
    exec_state = (1 << 2) | ((1 << 4) if long_mode else 0)
    cs_attr = (1 << 13) if long_mode else (1 << 14)
    vp = struct.pack("<HBBIQIHHQQ", exec_state, length & 0xF, 0, 0, 0, 0xFFFFFFFF, 8, cs_attr, rip, rflags)
    e = struct.pack("<II", reason, answer) + vp + body
    return e + bytes(224 - len(e))


def whp_io(port, size, write, rax):
    info = (1 if write else 0) | (size << 1)
    return struct.pack("<B3x16sIH6xQQQQ", 0, bytes(16), info, port, rax, 0, 0, 0)


def whp_mem(gpa, access, insn):
    return struct.pack("<B3x16sIQQ", len(insn), bytes(insn), access, gpa, 0)


WHP = {
    "io_out_then_in": whp_exit(2, whp_io(0x3F8, 1, True, 0x41)) + whp_exit(2, whp_io(0x511, 4, False, 0)),
    "mmio_write_then_read": whp_exit(1, whp_mem(0xFEE000B0, 1, [0x89, 0x08]))
    + whp_exit(1, whp_mem(0xFF000000, 0, [0x0F, 0xB6, 0x00]), answer=0) + whp_exit(8, b""),
    "mmio_read_prot32": whp_exit(1, whp_mem(0xFEC00000, 0, [0x8B, 0x05, 0, 0, 0xC0, 0xFE]), long_mode=False),
    "cpuid_then_halt": whp_exit(0x1001, struct.pack("<8Q", 1, 0, 0, 0, 0x906ED, 0, 0xBFEBFBFF, 0)) + whp_exit(8, b""),
    "init_sipi": whp_exit(0x1006, struct.pack("<Q", (1 << 32) | 0x4500)) + whp_exit(0x1006, struct.pack("<Q", (1 << 32) | 0x4608)),
    "unsupported_feature": whp_exit(6, struct.pack("<IIQ", 2, 0, 0x77)),
    "string_io": whp_exit(2, whp_io(0x3F8, 1, True, 0)[:20] + struct.pack("<I", 1 | (1 << 1) | (1 << 4)) + whp_io(0x3F8, 1, True, 0)[24:]),
    "shutdown": whp_exit(4, b""),
}
for name, e in WHP.items():
    write("fuzz_whp_exit", name, e)


# ---- fuzz_kernel_loader: [MiB-2, cmdline length, module length lo/hi, has module, 0] + ELF ----
def multiboot_header(flags=0x3):
    return struct.pack("<III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF)


def elf32(segments, entry, tail=b""):
    """segments: (p_type, offset, paddr, filesz, memsz); the file is headers, a multiboot
    header, then `tail`."""
    phnum = len(segments)
    ehdr = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    ehdr += struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, entry, 52, 0, 0, 52, 32, phnum, 40, 0, 0)
    ph = b"".join(struct.pack("<8I", t, off, paddr, paddr, fs, ms, 5, 0x1000)
                  for t, off, paddr, fs, ms in segments)
    body = ehdr + ph
    body += bytes((-len(body)) % 4) + multiboot_header() + tail
    return body


code = bytes([0xB0, 0x00, 0xE6, 0xF4, 0xF4])  # mov al, 0; out 0xf4, al; hlt
one = elf32([(1, 0, 0x100000, 0, 0)], 0x100000)
size = len(one) + len(code)
one = elf32([(1, 0, 0x100000, size, size + 0x1000)], 0x100000 + len(one), code)
two_probe = elf32([(1, 0, 0x100000, 0, 0), (1, 0, 0x200000, 0, 0)], 0)
n = len(two_probe) + len(code)
two = elf32([(1, 0, 0x100000, n, n), (1, 0, 0x180000, 0, 0x4000)], 0x100000 + len(two_probe), code)
low = elf32([(1, 0, 0x8000, 0, 0)], 0)
low = elf32([(1, 0, 0x8000, len(low) + 5, 0x2000)], 0x8000 + len(low), code)
LOADER = {
    "one_segment_bss": bytes([0, 32, 0, 0, 0, 0]) + one,
    "two_segments_module": bytes([1, 64, 0x00, 0x10, 1, 0]) + two,
    "below_hole_4mib": bytes([2, 0, 0, 0, 0, 0]) + low,
    "no_multiboot": bytes([0, 0, 0, 0, 0, 0]) + one[:52 + 32] + bytes(16) + code,
}
for name, f in LOADER.items():
    write("fuzz_kernel_loader", name, f)


# ---- fuzz_ports: [op][target][offset lo][offset hi][value...] accesses ----
SIZES = {1: 0, 2: 1, 4: 2, 8: 3}
TARGET = {"testdev": 0, "debug_exit": 1, "com1": 2, "fw_cfg": 3, "pci": 4, "post": 5}


def port(dev, offset, width, value=None):
    op = (SIZES[width] << 2) | (1 if value is not None else 0)
    out = bytes([op, TARGET[dev], offset + 4, 0])
    return out + (value.to_bytes(width, "little") if value is not None else b"")


def mmio(offset, width, value=None):
    op = (SIZES[width] << 2) | 2 | (1 if value is not None else 0)
    out = bytes([op, 0, offset & 0xFF, offset >> 8])
    return out + (value.to_bytes(width, "little") if value is not None else b"")


PORTS = {
    "fw_cfg_signature": port("fw_cfg", 0, 2, 0) + b"".join(port("fw_cfg", 1, 1) for _ in range(5)),
    "fw_cfg_cpus_ram": port("fw_cfg", 0, 2, 5) + port("fw_cfg", 1, 2) + port("fw_cfg", 0, 2, 3)
    + port("fw_cfg", 1, 4) + port("fw_cfg", 1, 4),
    "com1_hello_lsr": port("com1", 0, 1, ord("H")) + port("com1", 0, 1, ord("i")) + port("com1", 5, 1),
    "com1_divisor_scr": port("com1", 3, 1, 0x83) + port("com1", 0, 2, 0x0001) + port("com1", 3, 1, 0x03)
    + port("com1", 7, 1, 0x5A) + port("com1", 7, 1) + port("com1", 0, 4, 0x41424344),
    "com1_loopback_msr": port("com1", 4, 1, 0x1F) + port("com1", 6, 1) + port("com1", 0, 1, 0x55),
    "testdev_latch": port("testdev", 0, 4, 0x12345678) + port("testdev", 1, 1, 0xAB) + port("testdev", 0, 4)
    + port("testdev", 3, 4),
    "pci_probe": port("pci", 0, 4, 0x80000000) + port("pci", 4, 4) + port("pci", 0, 4) + port("pci", 6, 2),
    "unclaimed_post": port("post", 0, 1, 0x42) + port("post", 0, 2),
    "mmio_scratch": mmio(0x10, 8, 0x1122334455667788) + mmio(0x12, 4) + mmio(0xFFFE, 4, 0xAABBCCDD)
    + mmio(0xFFFC, 8),
    "debug_exit": port("testdev", 0, 1, 1) + port("debug_exit", 0, 4, 0x10) + port("debug_exit", 0, 1, 3),
}
for name, ops in PORTS.items():
    write("fuzz_ports", name, ops)
