/* setup.h: the boot CPU's C entry, the multiboot info and the command line (argv[0] is the
 * kernel path, as QEMU and virt-run pass it). Each kernel defines main(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct multiboot_info {
  uint32_t flags;
  uint32_t mem_lower, mem_upper; /* KiB; flags bit 0 */
  uint32_t boot_device;
  uint32_t cmdline;              /* flags bit 2 */
  uint32_t mods_count, mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length, mmap_addr; /* flags bit 6 */
};

#define MULTIBOOT_INFO_MEM (1u << 0)
#define MULTIBOOT_INFO_CMDLINE (1u << 2)
#define MULTIBOOT_INFO_MMAP (1u << 6)

extern const struct multiboot_info *multiboot;

/* The kernel: called on the boot CPU with the console, IDT and an xAPIC-mode LAPIC ready and
 * the PIC masked; its return value goes to exit(). */
int main(int argc, char **argv);

/* The value of a "key=value" argument ("" for a bare "key"), or null when absent. */
const char *arg_get(const char *key);
/* A numeric argument: false when absent; aborts the run when it is not a number. */
bool arg_u64(const char *key, uint64_t *value);

/* Switches the boot CPU's LAPIC to x2APIC mode when the command line says apic=x2apic (APs
 * started later follow it). Returns false after a SKIP when x2APIC was asked for but CPUID
 * hides it; the kernel should then return report_summary(). Aborts on another apic= value. */
bool apic_mode_from_args(void);
