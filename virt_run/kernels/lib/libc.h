/* libc.h: the few freestanding string and number helpers the kernels need. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* Parses a whole decimal or 0x-prefixed hexadecimal number; false on anything else. */
bool parse_u64(const char *s, uint64_t *out);
