/* flowcache.c - the exact-match flow cache (flowcache.h). */
#include "flowcache.h"

#include <stdlib.h>

bool flowcache_init(struct flowcache *fc, uint32_t n)
{
	uint32_t size = 64;
	while (size < n && size < (1u << 24))
		size <<= 1;
	fc->e = calloc(size, sizeof(*fc->e));
	fc->mask = size - 1;
	fc->hits = fc->misses = fc->rests = 0;
	fc->window_hits = fc->window_misses = 0;
	fc->rest = 0;
	return fc->e != NULL;
}

void flowcache_fini(struct flowcache *fc)
{
	free(fc->e);
	fc->e = NULL;
}

void flowcache_clear(struct flowcache *fc)
{
	memset(fc->e, 0, ((size_t)fc->mask + 1) * sizeof(*fc->e));
}
