/* steer.h - spreading flows over worker threads.
 *
 * Every worker owns the state of the flows it is the owner of (connection
 * table, proxy flow state, NAT aliases), so that its fast path takes no
 * lock. The owner of a frame is picked from a direction-independent hash
 * of its innermost 5-tuple: both directions of a flow, the frames a
 * service node returns, and the frames that come through the tunnel all
 * land on the same worker, whichever queue or socket the kernel handed
 * them to. A worker that receives another worker's frame hands it over
 * through a single-producer/single-consumer ring (buffer pointers only,
 * no copy: pkt.h gives foreign buffers back to their pool).
 *
 * A node that rewrites addresses (NAT) changes the hash. The owner then
 * records the rewritten tuple in a shared table (steer_nat_learn); the
 * first frames a node returns before that, which match no flow state on
 * the worker they reach, are passed from worker to worker until one owns
 * them (at most n - 1 hand-offs, counted in pkt->hops).
 *
 * Owns: the owner function, the hand-off rings, the NAT steering table.
 * Must not: keep per-flow state beyond that table, or block. Wake-ups of
 * a sleeping worker are the caller's (detourd uses an eventfd). */
#ifndef DETOUR_STEER_H
#define DETOUR_STEER_H

#include <stdatomic.h>

#include "flow.h"
#include "pkt.h"

#define STEER_MAX_WORKERS 64
#define STEER_ANY 0xffff     /* no flow (ARP, malformed): any worker may take it */
#define STEER_RING 2048      /* frames in flight from one worker to another */

/* Direction-independent hash of the innermost 5-tuple of a frame that
 * starts with Ethernet (possibly carrying NSH with an Ethernet payload)
 * or, when geneve is set, with a Geneve header. 0 = no IP flow found. */
uint64_t steer_hash(const uint8_t *frame, size_t len, bool geneve);
/* The same for a flow key (zone and network ignored). */
uint64_t steer_key_hash(const struct flow_key *k);

struct steer;

/* n_workers in 1..STEER_MAX_WORKERS; nat_slots: NAT table size (rounded
 * up to a power of two, 4-way sets). NULL when out of memory / bad n. */
struct steer *steer_create(uint16_t n_workers, uint32_t nat_slots);
void steer_destroy(struct steer *s);
uint16_t steer_workers(const struct steer *s);

/* Owner of a frame with hash h (steer_hash): the NAT table's word for
 * it, else h mod n. STEER_ANY for h == 0. */
uint16_t steer_owner(const struct steer *s, uint64_t h);

/* Hand n frames from worker `from` to worker `to`: returns how many the
 * ring took (the caller drops the rest). Only `from` may call it for this
 * pair. */
uint32_t steer_push(struct steer *s, uint16_t from, uint16_t to, struct pkt **pkts, uint32_t n);
/* Take up to max frames handed to worker `to` by any worker. */
uint32_t steer_pop(struct steer *s, uint16_t to, struct pkt **pkts, uint32_t max);
/* Anything waiting for worker `to`? */
bool steer_pending(const struct steer *s, uint16_t to);

/* Worker `owner` keeps the flow whose (rewritten) tuple is k. */
void steer_nat_learn(struct steer *s, const struct flow_key *k, uint16_t owner);

struct steer_stats {
	uint64_t nat_entries;   /* NAT tuples recorded */
	uint64_t nat_evicted;   /* recorded tuples pushed out by others (their flows may break) */
};
void steer_get_stats(const struct steer *s, struct steer_stats *st);

#endif
