/* fwcfg.h: QEMU's fw_cfg through its I/O ports (0x510 selector, 0x511 data, little-endian). */
#pragma once

#include <stdint.h>

#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05

/* Selects `key` and reads `bytes` (1..8) data bytes as a little-endian number. */
uint64_t fwcfg_read(uint16_t key, unsigned bytes);
