/* ioapic.h: the IOAPIC at 0xfec00000 (index register, then data window) and its redirection
 * table. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_REDIR_MASKED (1ull << 16)
#define IOAPIC_REDIR_LEVEL (1ull << 15)
#define IOAPIC_REDIR_REMOTE_IRR (1ull << 14)

uint32_t ioapic_read(unsigned reg);
void ioapic_write(unsigned reg, uint32_t value);

/* Number of redirection entries (IOAPIC version register bits 23:16, plus one). */
unsigned ioapic_pins(void);

/* Routes `pin` to `vector`, fixed delivery, physical destination `apic_id`, active high;
 * edge or level; masked or not. */
void ioapic_route(unsigned pin, uint8_t vector, bool level, uint32_t apic_id, bool masked);
void ioapic_set_masked(unsigned pin, bool masked);
uint64_t ioapic_redir(unsigned pin);
