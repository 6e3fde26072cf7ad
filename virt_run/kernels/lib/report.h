/* report.h: kvm-unit-tests-style verdicts ("PASS: ", "FAIL: ", "SKIP: ", "SUMMARY: ...") and
 * the exit through the debug-exit port 0xf4. */
#pragma once

#include <stdbool.h>

/* Exit codes written to port 0xf4 (the VMM's status is (code << 1) | 1). */
#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_SKIP 38
#define EXIT_ABORT 63

/* One test: "PASS: <msg>" or "FAIL: <msg>". Returns pass. Safe from any CPU. */
bool report(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One skipped test: "SKIP: <msg>". */
void report_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "INFO: <msg>", not counted. */
void report_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "SUMMARY: N tests[, F unexpected failures][, S skipped]" and returns the exit code:
 * EXIT_SKIP if every test was skipped (or none ran), else EXIT_FAIL if any failed, else
 * EXIT_PASS. */
int report_summary(void);

/* "ABORT: <msg>", the summary, then exit(EXIT_ABORT). */
void report_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Writes code to port 0xf4 (4 bytes); if the VMM has no debug-exit device, halts. */
void exit(int code) __attribute__((noreturn));
