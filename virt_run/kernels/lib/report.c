/* report.c: the verdict counters, the SUMMARY line and exit through port 0xf4. */
#include "report.h"

#include <stdarg.h>

#include "console.h"
#include "spinlock.h"
#include "x86.h"

#define DEBUG_EXIT_PORT 0xf4

static struct spinlock report_lock;
static unsigned tests, failures, skipped;

static void line(const char *prefix, const char *fmt, va_list va) {
  char msg[400];
  vsnprintf(msg, sizeof msg, fmt, va);
  printf("%s: %s\n", prefix, msg);
}

bool report(bool pass, const char *fmt, ...) {
  va_list va;
  va_start(va, fmt);
  spin_lock(&report_lock);
  ++tests;
  if (!pass) ++failures;
  line(pass ? "PASS" : "FAIL", fmt, va);
  spin_unlock(&report_lock);
  va_end(va);
  return pass;
}

void report_skip(const char *fmt, ...) {
  va_list va;
  va_start(va, fmt);
  spin_lock(&report_lock);
  ++tests;
  ++skipped;
  line("SKIP", fmt, va);
  spin_unlock(&report_lock);
  va_end(va);
}

void report_info(const char *fmt, ...) {
  va_list va;
  va_start(va, fmt);
  line("INFO", fmt, va);
  va_end(va);
}

int report_summary(void) {
  spin_lock(&report_lock);
  char buf[96];
  int n = snprintf(buf, sizeof buf, "SUMMARY: %u tests", tests);
  if (failures) n += snprintf(buf + n, sizeof buf - n, ", %u unexpected failures", failures);
  if (skipped) n += snprintf(buf + n, sizeof buf - n, ", %u skipped", skipped);
  printf("%s\n", buf);
  int code = tests == skipped ? EXIT_SKIP : failures ? EXIT_FAIL : EXIT_PASS;
  spin_unlock(&report_lock);
  return code;
}

void report_abort(const char *fmt, ...) {
  va_list va;
  va_start(va, fmt);
  line("ABORT", fmt, va);
  va_end(va);
  report_summary();
  exit(EXIT_ABORT);
}

void exit(int code) {
  outl(DEBUG_EXIT_PORT, (uint32_t)code);
  for (;;) asm volatile("cli; hlt");
}
