/* hugemem.h - large preallocated tables (buffer pool, connection table,
 * proxy flow state): mapped on 2 MiB boundaries with transparent huge pages
 * requested, and touched at allocation, so the packet path takes neither
 * page faults nor a TLB miss per table access. Owns nothing else. */
#ifndef DETOUR_HUGEMEM_H
#define DETOUR_HUGEMEM_H

#include <stddef.h>

/* Zeroed memory of `bytes`; NULL on failure. */
void *hugemem_alloc(size_t bytes);
void hugemem_free(void *p, size_t bytes);

#endif
