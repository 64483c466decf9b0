/* conntrack.h - the connection table of SPEC section 6: each flow pinned to
 * its path in both directions, aged by TCP state or idle time, bounded.
 *
 * Owns: the table memory (preallocated at create; no allocation per flow)
 * and entry lifetimes.
 * Must not: select paths or look at packets beyond the flow key and TCP
 * flags. One table per worker: no locks. */
#ifndef DETOUR_CONNTRACK_H
#define DETOUR_CONNTRACK_H

#include "flow.h"

/* A connection record, reached from either of its two keys. Only the
 * forward key is stored: the reverse is the same tuple swapped, under the
 * zone of the other end (rzone). One cache line, aligned: all that a packet
 * of an established flow reads or writes is in it (its key, path, state,
 * last use, packet counts), so a table far larger than the caches costs
 * one line per packet here. */
struct conn {
	struct flow_key key;      /* forward (as first seen) */
	uint16_t rzone;           /* zone of the reverse key */
	uint16_t path;            /* index of the pinned path in the running configuration (the
				   * datapath moves it when a reload renumbers the paths) */
	uint16_t rule;            /* the rule that made it; CLS_NO_RULE for a NAT alias */
	uint8_t action : 4;       /* enum rule_action */
	uint8_t fp : 4;           /* enum fp_action applied by flow programming */
	uint8_t tcp_state : 4;    /* internal TCP tracking state */
	uint8_t flags : 4;
	uint32_t last_seen_ms;    /* milliseconds, modulo 2^32: see conntrack_idle_ns */
	uint32_t pkts[2];         /* per direction, low 32 bits: see conntrack_pkts */
} __attribute__((aligned(64)));

/* Is k the key of direction dir of c? */
static inline bool conn_key_eq(const struct conn *c, int dir, const struct flow_key *k)
{
	if (dir == 0)
		return flow_key_eq(&c->key, k);
	return memcmp(&k->src, &c->key.dst, sizeof(k->src)) == 0 && memcmp(&k->dst, &c->key.src, sizeof(k->dst)) == 0 &&
	       k->sport == c->key.dport && k->dport == c->key.sport && k->proto == c->key.proto &&
	       k->is_ip == c->key.is_ip && k->zone == c->rzone && k->vni == c->key.vni;
}

/* Is c a live record (not deleted or expired)? For caches of conn pointers
 * (flowcache.h), which must also compare the key. */
#define CONN_F_USED 0x01
static inline bool conn_live(const struct conn *c) { return c->flags & CONN_F_USED; }

struct conntrack;

struct conntrack_stats {
	uint64_t lookups, hits, inserts, insert_full, expired, deleted;
	uint32_t entries, capacity;
};

/* capacity entries preallocated. NULL on failure. */
struct conntrack *conntrack_create(uint32_t capacity);
void conntrack_destroy(struct conntrack *ct);

/* Lookup by either key; *dir = 0 if k is the forward key, 1 if reverse. */
struct conn *conntrack_lookup(struct conntrack *ct, const struct flow_key *k, int *dir);
/* Batched lookup: keys[i] -> out[i] (NULL if miss), dirs[i]. Prefetches.
 * hashes: the keys' flow_key_hash values where the caller has them (0 where
 * not), or NULL. */
void conntrack_lookup_batch(struct conntrack *ct, const struct flow_key *const *keys, const uint64_t *hashes,
			    uint32_t n, struct conn **out, int *dirs);
/* Before conntrack_insert of k, a vector earlier: prefetch what it writes
 * (the buckets of the reverse key, the next free entry). */
void conntrack_prefetch_insert(const struct conntrack *ct, const struct flow_key *k, uint16_t reverse_zone);
/* Insert a new record for forward key k (the reverse key is derived by
 * flow_key_reverse, with reverse_zone as its zone). NULL when the table is
 * full (counted in insert_full): the caller falls back to stateless
 * selection. */
struct conn *conntrack_insert(struct conntrack *ct, const struct flow_key *k, uint16_t reverse_zone,
			      uint64_t now_ns);
/* TCP header flags, as conntrack_update takes them. */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* Update state on a packet of c in direction dir (TCP flags; 0 for non-TCP).
 * c is an entry this table's lookup or insert returned (it may have been
 * deleted since: nothing happens then). */
void conntrack_update(struct conntrack *ct, struct conn *c, int dir, uint8_t tcp_flags, uint64_t now_ns);
/* Would a SYN-ACK in the reply direction answer a SYN that c saw (TCP:
 * the handshake is under way, or nothing was seen yet)? true for non-TCP. */
bool conntrack_expects_synack(const struct conn *c);
/* Packets seen in direction dir of c (all 64 bits). */
uint64_t conntrack_pkts(const struct conntrack *ct, const struct conn *c, int dir);
/* How long c has been idle at now_ns (whole milliseconds). */
uint64_t conntrack_idle_ns(const struct conn *c, uint64_t now_ns);
void conntrack_delete(struct conntrack *ct, struct conn *c);
/* Age out: visits at most `budget` entries per call; returns entries expired. */
uint32_t conntrack_expire(struct conntrack *ct, uint64_t now_ns, uint32_t budget);
/* Walk all entries (control plane). Stops when fn returns false. */
void conntrack_walk(struct conntrack *ct, bool (*fn)(struct conn *c, void *arg), void *arg);
void conntrack_get_stats(const struct conntrack *ct, struct conntrack_stats *st);
/* The number of entries the table holds at most (0 for NULL). */
uint32_t conntrack_capacity(const struct conntrack *ct);
/* Idle timeouts, ns, kept in whole milliseconds, at most CONNTRACK_TIMEOUT_MAX
 * (idle times are measured modulo 2^31 ms). */
#define CONNTRACK_TIMEOUT_MAX (24ULL * 86400 * 1000000000)
void conntrack_set_timeouts(struct conntrack *ct, uint64_t tcp_established, uint64_t tcp_other,
			    uint64_t udp, uint64_t other);
size_t conntrack_entry_bytes(void);

#endif
