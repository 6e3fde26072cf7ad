/* fwcfg.c: fw_cfg reads, one CPU at a time (the selector is shared). */
#include "fwcfg.h"

#include "spinlock.h"
#include "x86.h"

#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511

static struct spinlock fwcfg_lock;

uint64_t fwcfg_read(uint16_t key, unsigned bytes) {
  uint64_t v = 0;
  spin_lock(&fwcfg_lock);
  outw(FW_CFG_SELECTOR, key);
  for (unsigned i = 0; i < bytes && i < 8; ++i) v |= (uint64_t)inb(FW_CFG_DATA) << (8 * i);
  spin_unlock(&fwcfg_lock);
  return v;
}
