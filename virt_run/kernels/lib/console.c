/* console.c: the 8250 UART on COM1 and a small vsnprintf. */
#include "console.h"

#include <stdbool.h>
#include <stdint.h>

#include "libc.h"
#include "spinlock.h"
#include "x86.h"

#define COM1 0x3f8
#define UART_DATA 0     /* THR; DLL while DLAB */
#define UART_IER 1      /* DLM while DLAB */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LCR_DLAB 0x80
#define LSR_THRE 0x20

static struct spinlock console_lock;

void console_init(void) {
  outb(COM1 + UART_LCR, inb(COM1 + UART_LCR) | LCR_DLAB);
  outb(COM1 + UART_DATA, 0x01); /* divisor 1: 115200 baud */
  outb(COM1 + UART_IER, 0x00);
  outb(COM1 + UART_LCR, inb(COM1 + UART_LCR) & ~LCR_DLAB);
  outb(COM1 + UART_IER, 0x00); /* no interrupts */
  outb(COM1 + UART_LCR, 0x03); /* 8N1 */
  outb(COM1 + UART_FCR, 0x00);
  outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

static void serial_out(char c) {
  while (!(inb(COM1 + UART_LSR) & LSR_THRE)) pause();
  outb(COM1 + UART_DATA, (uint8_t)c);
}

static void put_locked(const char *s, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == '\n') serial_out('\r');
    serial_out(s[i]);
  }
}

void puts(const char *s) {
  spin_lock(&console_lock);
  put_locked(s, strlen(s));
  spin_unlock(&console_lock);
}

void console_break_lock(void) { spin_unlock(&console_lock); }

struct sink {
  char *buf;
  size_t size;
  size_t len; /* what the whole output would need, as snprintf returns */
};

static void emit(struct sink *s, char c) {
  if (s->len + 1 < s->size) s->buf[s->len] = c;
  ++s->len;
}

static void emit_number(struct sink *s, uint64_t v, unsigned base, bool upper, bool negative,
                        unsigned width, bool zero, bool left) {
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char tmp[24];
  unsigned n = 0;
  do {
    tmp[n++] = digits[v % base];
    v /= base;
  } while (v);
  unsigned total = n + (negative ? 1 : 0);
  if (negative && zero) emit(s, '-');
  if (!left) {
    for (; total < width; ++total) emit(s, zero ? '0' : ' ');
  }
  if (negative && !zero) emit(s, '-');
  while (n) emit(s, tmp[--n]);
  for (; total < width; ++total) emit(s, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list va) {
  struct sink s = {buf, size, 0};
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      emit(&s, *fmt);
      continue;
    }
    ++fmt;
    bool left = false, zero = false;
    for (;; ++fmt) {
      if (*fmt == '-') {
        left = true;
      } else if (*fmt == '0') {
        zero = true;
      } else {
        break;
      }
    }
    unsigned width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int longs = 0;
    while (*fmt == 'l' || *fmt == 'z') {
      longs += *fmt == 'z' ? 2 : 1;
      ++fmt;
    }
    switch (*fmt) {
      case 'd':
      case 'i': {
        int64_t v = longs ? va_arg(va, int64_t) : va_arg(va, int);
        uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
        emit_number(&s, mag, 10, false, v < 0, width, zero && !left, left);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v = longs ? va_arg(va, uint64_t) : va_arg(va, unsigned);
        emit_number(&s, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', false, width, zero && !left,
                    left);
        break;
      }
      case 'p':
        emit(&s, '0');
        emit(&s, 'x');
        emit_number(&s, (uintptr_t)va_arg(va, void *), 16, false, false, width, zero, left);
        break;
      case 's': {
        const char *str = va_arg(va, const char *);
        if (!str) str = "(null)";
        unsigned n = strlen(str);
        if (!left) {
          for (; n < width; ++n) emit(&s, ' ');
        }
        for (; *str; ++str) emit(&s, *str);
        for (; n < width; ++n) emit(&s, ' ');
        break;
      }
      case 'c':
        emit(&s, (char)va_arg(va, int));
        break;
      case '%':
        emit(&s, '%');
        break;
      case '\0':
        --fmt; /* a lone '%' at the end */
        break;
      default:
        emit(&s, '%');
        emit(&s, *fmt);
        break;
    }
  }
  if (size) buf[s.len < size ? s.len : size - 1] = '\0';
  return (int)s.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list va;
  va_start(va, fmt);
  int n = vsnprintf(buf, size, fmt, va);
  va_end(va);
  return n;
}

int vprintf(const char *fmt, va_list va) {
  char buf[512];
  int n = vsnprintf(buf, sizeof buf, fmt, va);
  puts(buf);
  return n;
}

int printf(const char *fmt, ...) {
  va_list va;
  va_start(va, fmt);
  int n = vprintf(fmt, va);
  va_end(va);
  return n;
}
