/* console.h: the COM1 8250 console and printf-like output (one lock, so CPUs' lines do not mix). */
#pragma once

#include <stdarg.h>
#include <stddef.h>

/* Programs COM1 as kvm-unit-tests does: DLAB on, divisor 1 (115200 baud) through the data
 * ports, DLAB off, 8N1, no interrupts, no FIFO. A VMM that does not track DLAB prints the
 * divisor as a 0x01 byte. */
void console_init(void);

/* Writes s; '\n' goes out as "\r\n". */
void puts(const char *s);

/* printf subset: %d %i %u %x %X %p %s %c %%, flags '-' '0', a width, 'l' 'll' 'z' sizes. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list va);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list va);

/* For the fatal-exception path, which may interrupt a CPU that holds the console lock. */
void console_break_lock(void);
