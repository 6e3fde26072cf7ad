/* console.c: the console and each debug-exit code. Prints a known text (the host compares it
 * exactly, argv included), after reprogramming the divisor with printable bytes ('D', 'L') under DLAB, which a
 * VMM that does not track DLAB would print. Then exits with code=N: 0, 1 and 38 through a
 * PASS, FAIL or SKIP and the SUMMARY; 63 through ABORT; any other code directly. */
#include "console.h"
#include "report.h"
#include "setup.h"
#include "x86.h"

#define COM1 0x3f8

int main(int argc, char **argv) {
  uint64_t code = 0;
  arg_u64("code", &code);

  outb(COM1 + 3, inb(COM1 + 3) | 0x80); /* DLAB */
  outb(COM1 + 0, 'D');
  outb(COM1 + 1, 'L');
  outb(COM1 + 3, inb(COM1 + 3) & ~0x80);
  outb(COM1 + 1, 0);

  printf("console: hello from the console kernel\n");
  for (int i = 0; i < argc; ++i) printf("console: argv[%d] %s\n", i, argv[i]);
  printf("console: %d %i %u 0x%x 0x%X %05d [%-6s] [%6s] %c 100%%\n", 42, -7, 4000000000u,
         0xbeef, 0xCAFE, 17, "left", "right", 'Z');
  printf("console: %lu 0x%lx\n", 18446744073709551615ul, 0x123456789abcdef0ul);
  printf("console: exit code %lu\n", code);

  switch (code) {
    case EXIT_PASS:
      report(true, "console: the text above is on the console");
      return report_summary();
    case EXIT_FAIL:
      report(false, "console: failing on purpose (code=1)");
      return report_summary();
    case EXIT_SKIP:
      report_skip("console: skipping on purpose (code=38)");
      return report_summary();
    case EXIT_ABORT:
      report_abort("console: aborting on purpose (code=63)");
    default:
      exit((int)code);
  }
}
