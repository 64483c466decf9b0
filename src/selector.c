/* selector.c - weighted Maglev consistent hashing (after Eisenbud et al.,
 * "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016)
 * over the paths of one chain.
 *
 * Owns: one lookup table of SELECTOR_TABLE_SIZE (prime M) uint16 entries.
 * Must not: decide liveness or weights (the caller passes them), touch
 * packets.
 *
 * Build: candidate i has a permutation of the M slots, offset + j * skip
 * (mod M), with offset and skip from two differently seeded hashes of its
 * key (skip in [1, M-1], so every permutation covers all slots since M is
 * prime). Candidates are visited in order of key (then index), so the
 * table depends only on the set of (key, weight) pairs, not on the order
 * the caller lists them. Filling runs in rounds: each round every live
 * candidate gains `weight` credits and, for each `max_weight` credits it
 * holds, claims the next free slot of its permutation. The heaviest
 * candidate claims one slot per round; a candidate of weight w claims
 * w/max_weight per round on average, so slot shares follow the weights.
 * Cost: O(M log M) expected slot probes plus O(n) per round (rounds <= M):
 * a few ms for n <= 64. A lookup is one table read.
 *
 * Rebuilds are written to a scratch table and copied in, so a concurrent
 * reader only ever sees valid candidate indexes (old or new). */
#include "selector.h"

#include "flow.h"

#include <stdlib.h>

#define M SELECTOR_TABLE_SIZE

struct selector {
	uint16_t table[M];
	uint16_t scratch[M];
};

struct cand {
	uint32_t key;
	uint16_t idx;
	uint32_t weight;
	uint32_t offset, skip, next; /* permutation state */
	uint64_t credit;
};

struct selector *selector_create(void)
{
	struct selector *s = malloc(sizeof(*s));
	if (!s)
		return NULL;
	for (uint32_t i = 0; i < M; i++)
		s->table[i] = SELECTOR_NONE;
	return s;
}

void selector_free(struct selector *s)
{
	free(s);
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

bool selector_build(struct selector *s, uint16_t n, const uint32_t *key, const uint32_t *weights)
{
	if (!s || n >= SELECTOR_NONE || (n > 0 && (!key || !weights)))
		return false;
	struct cand *c = calloc(n ? n : 1, sizeof(*c));
	if (!c)
		return false;
	uint16_t live = 0;
	uint32_t wmax = 0;
	for (uint16_t i = 0; i < n; i++) {
		if (weights[i] == 0)
			continue;
		struct cand *x = &c[live++];
		x->key = key[i];
		x->idx = i;
		x->weight = weights[i];
		uint8_t kb[4];
		wr32(kb, key[i]);
		x->offset = (uint32_t)(hash_bytes(kb, 4, 0x6d61676c65763031ULL) % M);
		x->skip = (uint32_t)(hash_bytes(kb, 4, 0x736b697073656564ULL) % (M - 1)) + 1;
		x->next = 0;
		x->credit = 0;
		if (weights[i] > wmax)
			wmax = weights[i];
	}
	uint16_t *t = s->scratch;
	for (uint32_t i = 0; i < M; i++)
		t[i] = SELECTOR_NONE;
	if (live > 0) {
		qsort(c, live, sizeof(*c), cand_cmp);
		uint32_t filled = 0;
		while (filled < M) {
			for (uint16_t i = 0; i < live && filled < M; i++) {
				struct cand *x = &c[i];
				x->credit += x->weight;
				while (x->credit >= wmax && filled < M) {
					x->credit -= wmax;
					/* next free slot of x's permutation; some slot
					 * is free, and the permutation visits all M */
					uint32_t slot;
					do {
						slot = (uint32_t)(((uint64_t)x->skip * x->next + x->offset) % M);
						x->next++;
					} while (t[slot] != SELECTOR_NONE);
					t[slot] = x->idx;
					filled++;
				}
			}
		}
	}
	memcpy(s->table, t, sizeof(s->table));
	free(c);
	return true;
}

uint16_t selector_pick(const struct selector *s, uint64_t flow_hash)
{
	if (!s)
		return SELECTOR_NONE;
	/* multiply-shift of the high 32 bits onto [0, M) */
	uint32_t slot = (uint32_t)(((flow_hash >> 32) * (uint64_t)M) >> 32);
	return s->table[slot];
}
