/* flowcache.h - the exact-match flow cache in front of the classifier and
 * the connection table: a small direct-mapped array per worker, keyed by
 * the flow key's hash, that remembers which connection (and direction) a
 * key belonged to. A hit costs one cache line of the array plus the
 * connection record the packet needs anyway, instead of the rule lookup
 * (tuple space search with many rules) and the connection table's buckets.
 *
 * Owns: the array. Never owns connections: an entry is only a hint,
 * checked on every hit against the record's liveness and full key, so a
 * connection deleted, expired or reused for another flow is a miss, and
 * nothing needs invalidating when the table changes.
 * Must not: cache decisions without a connection (no rule matched): those
 * depend on rules and on the reverse flow, which change without notice.
 *
 * It steps aside when it does not pay: with far more active flows than
 * entries, nearly every probe misses (and every insert writes a line the
 * next flow evicts). After a window of FC_WINDOW probes or more that hit
 * less than half the time, the datapath skips it (no hash, probe or insert)
 * for FC_REST packets, then tries another window. (Judged per batch: no
 * cost per packet.) */
#ifndef DETOUR_FLOWCACHE_H
#define DETOUR_FLOWCACHE_H

#include "conntrack.h"

#define FC_WINDOW 1024u
#define FC_REST (64u * FC_WINDOW)

struct flowcache_entry {
	uint32_t sig;       /* upper half of the key hash; 0 = empty */
	uint32_t dir;
	struct conn *c;
};

struct flowcache {
	uint32_t mask;
	struct flowcache_entry *e;
	uint64_t hits, misses;
	uint64_t window_hits, window_misses; /* hits and misses when the window began */
	uint32_t rest;                       /* packets left to skip the cache for */
	uint64_t rests;                      /* windows after which it stepped aside */
};

/* n entries (rounded up to a power of two, at least 64). False on OOM. */
bool flowcache_init(struct flowcache *fc, uint32_t n);
void flowcache_fini(struct flowcache *fc);
void flowcache_clear(struct flowcache *fc);

static inline uint32_t flowcache_sig(uint64_t h) { return (uint32_t)(h >> 32) | 1u; }

static inline void flowcache_prefetch(const struct flowcache *fc, uint64_t h)
{
	__builtin_prefetch(&fc->e[h & fc->mask]);
}

/* Is the cache in use for a batch of n packets? */
static inline bool flowcache_active(struct flowcache *fc, uint32_t n)
{
	if (fc->rest) {
		fc->rest = fc->rest > n ? fc->rest - n : 0;
		return false;
	}
	uint64_t hits = fc->hits - fc->window_hits, misses = fc->misses - fc->window_misses;
	if (hits + misses >= FC_WINDOW) {
		if (hits < misses) {
			fc->rest = FC_REST;
			fc->rests++;
		}
		fc->window_hits = fc->hits;
		fc->window_misses = fc->misses;
	}
	return !fc->rest;
}

/* The connection of key k (hash h), or NULL. */
static inline struct conn *flowcache_lookup(struct flowcache *fc, const struct flow_key *k, uint64_t h, int *dir)
{
	const struct flowcache_entry *e = &fc->e[h & fc->mask];
	if (e->sig == flowcache_sig(h) && conn_live(e->c) && conn_key_eq(e->c, e->dir, k)) {
		*dir = (int)e->dir;
		fc->hits++;
		return e->c;
	}
	fc->misses++;
	return NULL;
}

static inline void flowcache_insert(struct flowcache *fc, uint64_t h, struct conn *c, int dir)
{
	struct flowcache_entry *e = &fc->e[h & fc->mask];
	e->sig = flowcache_sig(h);
	e->dir = (uint32_t)dir;
	e->c = c;
}

#endif
