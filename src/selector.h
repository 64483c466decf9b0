/* selector.h - the path selector of SPEC section 6: per chain, a Maglev
 * consistent-hash lookup table over the live paths, weighted.
 *
 * Owns: the lookup tables. Rebuilt (off the fast path) when liveness or
 * weights change; a lookup is one array read.
 * Must not: decide liveness (the caller passes it) or touch packets. */
#ifndef DETOUR_SELECTOR_H
#define DETOUR_SELECTOR_H

#include "common.h"

#define SELECTOR_TABLE_SIZE 65537 /* prime; entries per chain table */
#define SELECTOR_NONE 0xffff

struct selector;

/* A table over n candidates (paths of one chain); names give each candidate
 * its stable permutation, so tables built on different hosts agree. */
struct selector *selector_create(void);
void selector_free(struct selector *s);
/* Rebuild: weights[i] == 0 means candidate i is not live. Candidates are
 * identified by key[i] (e.g. the forward SPI), which seeds its permutation.
 * Returns false on bad arguments. */
bool selector_build(struct selector *s, uint16_t n, const uint32_t *key, const uint32_t *weights);
/* Candidate index for a flow hash; SELECTOR_NONE if no candidate is live. */
uint16_t selector_pick(const struct selector *s, uint64_t flow_hash);

#endif
