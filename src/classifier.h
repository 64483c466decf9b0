/* classifier.h - rule matching of SPEC section 3 step 1: for a
 * classification point (guest port, direction), the highest-priority rule
 * whose match covers the packet's flow key.
 *
 * Owns: the compiled rule index built from a topology.
 * Must not: touch connection state or paths. Lookups are read-only and
 * thread-safe; a reload builds a new classifier. */
#ifndef DETOUR_CLASSIFIER_H
#define DETOUR_CLASSIFIER_H

#include "flow.h"
#include "topology.h"

#define CLS_NO_RULE 0xffff

struct classifier;

/* Compile the rules of t. NULL on memory exhaustion. */
struct classifier *classifier_build(const struct topology *t);
void classifier_free(struct classifier *c);

/* Highest-priority rule (ties: first in file) for a packet at guest
 * `guest` (guest index), `ingress` (true: entering the guest; false:
 * leaving it), with flow key k (k->is_ip must be 1). CLS_NO_RULE if none. */
uint16_t classifier_lookup(const struct classifier *c, uint16_t guest, bool ingress,
			   const struct flow_key *k);

/* Beyond CLS_LINEAR_MAX rules at a classification point the lookup is a
 * tuple space search (several hash probes) rather than a short scan. */
#define CLS_LINEAR_MAX 16

#endif
