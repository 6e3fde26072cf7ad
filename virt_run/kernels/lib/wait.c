/* wait.c: settle(), the "anything pending has arrived" point of the negative checks. */
#include "wait.h"

void settle(void) {
  uint64_t flags;
  asm volatile("pushfq; pop %0" : "=r"(flags));
  sti();
  for (int i = 0; i < 64; ++i) (void)inb(0x3fd);
  if (!(flags & 0x200)) cli();
}
