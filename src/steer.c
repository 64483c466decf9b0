/* steer.c - owner hash, hand-off rings and NAT steering table (steer.h). */
#include "steer.h"

#include "nsh.h"
#include "tunnel.h"
#include "wire.h"

#include <stdlib.h>

struct ring {
	_Alignas(64) _Atomic uint32_t head; /* written by the consumer */
	_Alignas(64) _Atomic uint32_t tail; /* written by the producer */
	_Alignas(64) struct pkt *slot[STEER_RING];
};

struct steer {
	uint16_t n;
	uint32_t nat_mask;              /* sets - 1 */
	_Atomic uint64_t *nat;          /* [sets * 4]: (hash & ~0xff) | owner, 0 = empty */
	_Atomic uint64_t nat_entries, nat_evicted;
	struct ring *rings;             /* [to * n + from] */
};

#define NAT_WAYS 4
#define TAG(h) ((h) & ~(uint64_t)0xff ? (h) & ~(uint64_t)0xff : (uint64_t)0x100)

/* One endpoint (address, port): all 128 bits of the address count. */
static inline uint64_t end_mix(uint64_t hi64, uint64_t lo64, uint16_t port)
{
	return hash_mix64(hi64 ^ hash_mix64(lo64 + port));
}

/* Direction-independent: a function of the two endpoints as a set. */
static inline uint64_t pair_mix(uint64_t a, uint64_t b, uint8_t proto)
{
	uint64_t h = hash_mix64((a + b) ^ ((uint64_t)proto << 56)) ^ (a ^ b);
	return h ? h : 1;
}

static inline uint64_t addr_hi(const uint8_t *a) { return (uint64_t)rd32(a) << 32 | rd32(a + 4); }
static inline uint64_t addr_lo(const uint8_t *a) { return (uint64_t)rd32(a + 8) << 32 | rd32(a + 12); }

uint64_t steer_key_hash(const struct flow_key *k)
{
	return pair_mix(end_mix(addr_hi(k->src.b), addr_lo(k->src.b), k->sport),
			end_mix(addr_hi(k->dst.b), addr_lo(k->dst.b), k->dport), k->proto);
}

/* Untagged IPv4 TCP/UDP, the common case, without the full parser; NULL
 * result (0) sends the frame to the general path. Gives what
 * steer_key_hash gives for the parser's key (fuzz_steer checks it). */
static uint64_t hash_ipv4_fast(const uint8_t *f, size_t len)
{
	if (len < 14 + 20 || rd16(f + 12) != 0x0800)
		return 0;
	const uint8_t *ip = f + 14;
	size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
	uint8_t proto = ip[9];
	if ((ip[0] >> 4) != 4 || ihl != 20 || (proto != 6 && proto != 17) || rd16(ip + 2) < 20 + 8 ||
	    14u + rd16(ip + 2) > len || (rd16(ip + 6) & 0x3fff))
		return 0; /* options, fragments, short: the parser decides */
	const uint8_t *l4 = ip + 20;
	if (len < 14 + 20 + (proto == 6 ? 20u : 8u) || (proto == 6 && rd16(ip + 2) < 40))
		return 0;
	/* IPv4-mapped: ::ffff:a.b.c.d */
	const uint64_t hi = 0, lo_pfx = (uint64_t)0xffff << 32;
	return pair_mix(end_mix(hi, lo_pfx | rd32(ip + 12), rd16(l4)), end_mix(hi, lo_pfx | rd32(ip + 16), rd16(l4 + 2)),
			proto);
}

static uint64_t hash_nsh(const uint8_t *p, size_t len);

/* An Ethernet frame; NSH inside it only at depth 0 (what a node returns). */
static uint64_t hash_eth(const uint8_t *f, size_t len, int depth)
{
	uint64_t h = hash_ipv4_fast(f, len);
	if (h)
		return h;
	size_t off = 12;
	if (len < 14)
		return 0;
	uint16_t type = rd16(f + off);
	for (int tags = 0; (type == 0x8100 || type == 0x88a8) && tags < 2; tags++) {
		off += 4;
		if (len < off + 2)
			return 0;
		type = rd16(f + off);
	}
	off += 2;
	if (type == TUNNEL_PROTO_NSH)
		return depth > 0 ? 0 : hash_nsh(f + off, len - off);
	struct pkt_layout lay;
	struct flow_key key = {0};
	if (wire_parse_buf(f, len, &lay, &key) != DROP_NONE || !key.is_ip)
		return 0;
	return steer_key_hash(&key);
}

/* NSH with an Ethernet payload: the payload's flow. */
static uint64_t hash_nsh(const uint8_t *p, size_t len)
{
	struct nsh_info ni;
	if (nsh_decode(p, len, 0, &ni, NULL) != DROP_NONE || ni.next_proto != NSH_NP_ETHERNET || ni.hdr_len > len)
		return 0;
	return hash_eth(p + ni.hdr_len, len - ni.hdr_len, 1);
}

uint64_t steer_hash(const uint8_t *frame, size_t len, bool geneve)
{
	if (!geneve)
		return hash_eth(frame, len, 0);
	struct geneve_info gi;
	if (geneve_decode(frame, len, &gi) != DROP_NONE || gi.hdr_len > len)
		return 0;
	if (gi.proto == TUNNEL_PROTO_ETH)
		return hash_eth(frame + gi.hdr_len, len - gi.hdr_len, 0);
	if (gi.proto == TUNNEL_PROTO_NSH)
		return hash_nsh(frame + gi.hdr_len, len - gi.hdr_len);
	return 0;
}

struct steer *steer_create(uint16_t n_workers, uint32_t nat_slots)
{
	if (n_workers == 0 || n_workers > STEER_MAX_WORKERS || nat_slots > (1u << 24))
		return NULL;
	struct steer *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->n = n_workers;
	uint32_t sets = 1;
	while (sets * NAT_WAYS < nat_slots)
		sets <<= 1;
	s->nat_mask = sets - 1;
	s->nat = calloc((size_t)sets * NAT_WAYS, sizeof(*s->nat));
	s->rings = aligned_alloc(64, (size_t)n_workers * n_workers * sizeof(*s->rings));
	if (!s->nat || !s->rings) {
		steer_destroy(s);
		return NULL;
	}
	for (uint32_t i = 0; i < (uint32_t)n_workers * n_workers; i++) {
		atomic_init(&s->rings[i].head, 0);
		atomic_init(&s->rings[i].tail, 0);
	}
	for (uint32_t i = 0; i < sets * NAT_WAYS; i++)
		atomic_init(&s->nat[i], 0);
	atomic_init(&s->nat_entries, 0);
	atomic_init(&s->nat_evicted, 0);
	return s;
}

void steer_destroy(struct steer *s)
{
	if (!s)
		return;
	free(s->nat);
	free(s->rings);
	free(s);
}

uint16_t steer_workers(const struct steer *s) { return s->n; }

uint16_t steer_owner(const struct steer *s, uint64_t h)
{
	if (!h)
		return STEER_ANY;
	if (atomic_load_explicit(&s->nat_entries, memory_order_relaxed)) {
		const _Atomic uint64_t *set = &s->nat[(h & s->nat_mask) * NAT_WAYS];
		uint64_t tag = TAG(h);
		for (int w = 0; w < NAT_WAYS; w++) {
			uint64_t e = atomic_load_explicit(&set[w], memory_order_relaxed);
			if ((e & ~(uint64_t)0xff) == tag && (e & 0xff) < s->n)
				return (uint16_t)(e & 0xff);
		}
	}
	return (uint16_t)((h >> 32) % s->n);
}

void steer_nat_learn(struct steer *s, const struct flow_key *k, uint16_t owner)
{
	uint64_t h = steer_key_hash(k), tag = TAG(h);
	_Atomic uint64_t *set = &s->nat[(h & s->nat_mask) * NAT_WAYS];
	int free_way = -1;
	for (int w = 0; w < NAT_WAYS; w++) {
		uint64_t e = atomic_load_explicit(&set[w], memory_order_relaxed);
		if ((e & ~(uint64_t)0xff) == tag) {
			atomic_store_explicit(&set[w], tag | owner, memory_order_relaxed);
			return;
		}
		if (!e && free_way < 0)
			free_way = w;
	}
	/* two workers may race for a free way: the loser's entry is lost and
	 * its flow is found again by passing frames on (steer.h) */
	if (free_way < 0) {
		free_way = (int)((h >> 40) % NAT_WAYS);
		atomic_fetch_add_explicit(&s->nat_evicted, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&s->nat_entries, 1, memory_order_relaxed);
	}
	atomic_store_explicit(&set[free_way], tag | owner, memory_order_relaxed);
}

void steer_get_stats(const struct steer *s, struct steer_stats *st)
{
	st->nat_entries = atomic_load(&s->nat_entries);
	st->nat_evicted = atomic_load(&s->nat_evicted);
}

uint32_t steer_push(struct steer *s, uint16_t from, uint16_t to, struct pkt **pkts, uint32_t n)
{
	struct ring *r = &s->rings[(size_t)to * s->n + from];
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint32_t room = STEER_RING - (tail - head);
	if (n > room)
		n = room;
	for (uint32_t i = 0; i < n; i++)
		r->slot[(tail + i) & (STEER_RING - 1)] = pkts[i];
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

uint32_t steer_pop(struct steer *s, uint16_t to, struct pkt **pkts, uint32_t max)
{
	uint32_t got = 0;
	for (uint16_t from = 0; from < s->n && got < max; from++) {
		struct ring *r = &s->rings[(size_t)to * s->n + from];
		uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
		uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
		uint32_t k = tail - head;
		if (k > max - got)
			k = max - got;
		for (uint32_t i = 0; i < k; i++)
			pkts[got++] = r->slot[(head + i) & (STEER_RING - 1)];
		atomic_store_explicit(&r->head, head + k, memory_order_release);
	}
	return got;
}

bool steer_pending(const struct steer *s, uint16_t to)
{
	for (uint16_t from = 0; from < s->n; from++) {
		const struct ring *r = &s->rings[(size_t)to * s->n + from];
		if (atomic_load_explicit(&r->tail, memory_order_acquire) !=
		    atomic_load_explicit(&r->head, memory_order_relaxed))
			return true;
	}
	return false;
}
