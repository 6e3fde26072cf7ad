/* setup.c: kernel_start (the boot CPU's C entry), the command line and the common apic= option. */
#include "setup.h"

#include "apic.h"
#include "console.h"
#include "cpu.h"
#include "idt.h"
#include "libc.h"
#include "report.h"
#include "x86.h"

#define MULTIBOOT_LOADER_MAGIC 0x2BADB002
#define MAX_ARGS 32

const struct multiboot_info *multiboot;
static char cmdline[1024];
static char *args[MAX_ARGS + 1];
static int nargs;

static void split_cmdline(void) {
  if (!(multiboot->flags & MULTIBOOT_INFO_CMDLINE)) return;
  const char *src = (const char *)(uintptr_t)multiboot->cmdline;
  size_t n = strlen(src);
  if (n >= sizeof cmdline) report_abort("command line longer than %zu bytes", sizeof cmdline - 1);
  memcpy(cmdline, src, n + 1);
  for (char *p = cmdline; *p;) {
    while (*p == ' ') *p++ = '\0';
    if (!*p) break;
    if (nargs == MAX_ARGS) report_abort("more than %d arguments", MAX_ARGS);
    args[nargs++] = p;
    while (*p && *p != ' ') ++p;
  }
}

const char *arg_get(const char *key) {
  size_t n = strlen(key);
  for (int i = 1; i < nargs; ++i) {
    if (strncmp(args[i], key, n) != 0) continue;
    if (args[i][n] == '=') return args[i] + n + 1;
    if (args[i][n] == '\0') return "";
  }
  return 0;
}

bool arg_u64(const char *key, uint64_t *value) {
  const char *s = arg_get(key);
  if (!s) return false;
  if (!parse_u64(s, value)) report_abort("argument %s=%s is not a number", key, s);
  return true;
}

bool apic_mode_from_args(void) {
  const char *mode = arg_get("apic");
  if (!mode || strcmp(mode, "xapic") == 0) return true;
  if (strcmp(mode, "x2apic") != 0) report_abort("apic=%s: expected xapic or x2apic", mode);
  if (!apic_enable(true)) {
    report_skip("apic=x2apic: CPUID.1:ECX[21] (x2APIC) is 0");
    return false;
  }
  return true;
}

void kernel_start(uint32_t magic, uint32_t info) {
  cpu_init_self(0);
  console_init();
  if (magic != MULTIBOOT_LOADER_MAGIC) {
    report_abort("entered with EAX 0x%x, not the multiboot loader magic 0x%x", magic,
                 MULTIBOOT_LOADER_MAGIC);
  }
  multiboot = (const struct multiboot_info *)(uintptr_t)info;
  idt_init();
  outb(0x21, 0xff); /* mask both PICs: interrupts come through the LAPIC and IOAPIC */
  outb(0xa1, 0xff);
  apic_enable(false);
  split_cmdline();
  exit(main(nargs, args));
}
