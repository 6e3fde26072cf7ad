/* fw_cfg.c: fw_cfg NB_CPUS and RAM_SIZE equal the machine's shape given on the command line
 * (cpus=N, mem=MiB, as --smp and -m), and the multiboot memory information (mem_upper and
 * the memory map) ends where RAM_SIZE says. */
#include "fwcfg.h"
#include "report.h"
#include "setup.h"

#define FIRMWARE_SLACK (1ull << 20)

struct mmap_entry {
  uint32_t size;
  uint64_t base, length;
  uint32_t type;
} __attribute__((packed));

/* The end of the highest usable (type 1) range below 4 GiB in the multiboot memory map. */
static uint64_t mmap_ram_end(void) {
  uint64_t end = 0;
  uintptr_t p = multiboot->mmap_addr, limit = p + multiboot->mmap_length;
  while (p < limit) {
    const struct mmap_entry *e = (const struct mmap_entry *)p;
    uint64_t top = e->base + e->length;
    if (e->type == 1 && top <= (1ull << 32) && top > end) end = top;
    p += e->size + 4;
  }
  return end;
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  uint64_t cpus = 0, mem = 0;
  unsigned nb_cpus = (unsigned)fwcfg_read(FW_CFG_NB_CPUS, 2);
  uint64_t ram = fwcfg_read(FW_CFG_RAM_SIZE, 8);
  report_info("fw_cfg NB_CPUS %u, RAM_SIZE 0x%lx", nb_cpus, ram);
  if (arg_u64("cpus", &cpus)) {
    report(nb_cpus == cpus, "fw_cfg NB_CPUS is %u (expected %lu)", nb_cpus, cpus);
  } else {
    report_skip("NB_CPUS: no cpus=N on the command line");
  }
  if (arg_u64("mem", &mem)) {
    report(ram == mem << 20, "fw_cfg RAM_SIZE is 0x%lx (expected %lu MiB)", ram, mem);
  } else {
    report_skip("RAM_SIZE: no mem=MiB on the command line");
  }

  /* Up to 2 GiB, RAM is one block from 0 (minus the legacy hole) and the multiboot info must
   * say where it ends: at RAM_SIZE, or a little below when firmware keeps the top (QEMU's
   * SeaBIOS reserves 128 KiB there for its tables). */
  if (ram > (2048ull << 20)) {
    report_skip("multiboot memory: RAM_SIZE above 2 GiB, no single block to compare");
  } else if (!(multiboot->flags & MULTIBOOT_INFO_MEM) || !(multiboot->flags & MULTIBOOT_INFO_MMAP)) {
    report(false, "multiboot info has mem_upper and mmap (flags 0x%x)", multiboot->flags);
  } else {
    uint64_t upper_end = ((uint64_t)multiboot->mem_upper + 1024) << 10, mmap_end = mmap_ram_end();
    report(upper_end <= ram && upper_end + FIRMWARE_SLACK >= ram,
           "multiboot mem_upper ends at 0x%lx, at most 1 MiB below RAM_SIZE", upper_end);
    report(mmap_end <= ram && mmap_end + FIRMWARE_SLACK >= ram,
           "multiboot memory map's usable RAM ends at 0x%lx, at most 1 MiB below RAM_SIZE",
           mmap_end);
  }
  return report_summary();
}
