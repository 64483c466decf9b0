/* hugemem.c - 2 MiB-aligned anonymous mappings with MADV_HUGEPAGE. */
#include "hugemem.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define HUGE_2M (2u << 20)

static size_t round_up(size_t n) { return (n + HUGE_2M - 1) & ~(size_t)(HUGE_2M - 1); }

void *hugemem_alloc(size_t bytes)
{
	if (bytes == 0)
		return NULL;
	size_t len = round_up(bytes);
	/* over-map by 2 MiB to align the start, then trim */
	uint8_t *raw = mmap(NULL, len + HUGE_2M, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1);
	size_t head = start - (uintptr_t)raw, tail = HUGE_2M - head;
	if (head)
		munmap(raw, head);
	if (tail)
		munmap((uint8_t *)start + len, tail);
	void *p = (void *)start;
	madvise(p, len, MADV_HUGEPAGE); /* a hint: small pages still work */
	memset(p, 0, len);              /* fault everything in now */
	return p;
}

void hugemem_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, round_up(bytes));
}
