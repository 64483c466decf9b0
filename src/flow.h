/* flow.h - the flow key (what the classifier, connection table and proxies
 * match on) and its hash. Owns no state. */
#ifndef DETOUR_FLOW_H
#define DETOUR_FLOW_H

#include "common.h"

/* 5-tuple plus the guest network. IPv4 addresses are IPv4-mapped. For ICMP
 * echo, sport = dport = identifier; for other ICMP, ports are type/code. */
struct flow_key {
	struct ipaddr src, dst;
	uint16_t sport, dport;
	uint8_t proto;   /* IPPROTO_* */
	uint8_t is_ip;   /* 0: non-IP frame; key is meaningless */
	uint16_t zone;   /* classification point: guest port id * 2 + (ingress ? 1 : 0) */
	uint32_t vni;    /* guest network */
};

static inline void flow_key_reverse(const struct flow_key *k, struct flow_key *r)
{
	*r = *k;
	r->src = k->dst;
	r->dst = k->src;
	r->sport = k->dport;
	r->dport = k->sport;
}

static inline uint64_t hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

#if defined(__SSE4_2__)
#include <nmmintrin.h>
/* Two CRC32-C lanes (one instruction per 8 bytes each), then a full mix. */
static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t a = (uint32_t)seed, c = (uint32_t)(seed >> 32) ^ 0x9e3779b9u;
	while (n >= 16) {
		uint64_t w0, w1;
		memcpy(&w0, b, 8);
		memcpy(&w1, b + 8, 8);
		a = _mm_crc32_u64(a, w0);
		c = _mm_crc32_u64(c, w1);
		b += 16;
		n -= 16;
	}
	uint64_t w = 0;
	if (n >= 8) {
		memcpy(&w, b, 8);
		a = _mm_crc32_u64(a, w);
		b += 8;
		n -= 8;
		w = 0;
	}
	memcpy(&w, b, n);
	c = _mm_crc32_u64(c, w ^ ((uint64_t)n << 56));
	return hash_mix64(a << 32 ^ c ^ seed);
}
#else
static inline uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = hash_mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
		b += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, b, n);
	return hash_mix64(h ^ w ^ ((uint64_t)n << 56));
}
#endif

/* The hashes below read the key's words in place and build the rest in
 * registers: a copy written in parts (a field cleared, fields swapped,
 * bytes packed) and read back as words waits on a store-forwarding stall. */

/* The word of struct flow_key from sport to zone, as it lies in memory. */
static inline uint64_t flow_ports_word(uint16_t sport, uint16_t dport, uint8_t proto, uint8_t is_ip, uint16_t zone)
{
	return sport | (uint64_t)dport << 16 | (uint64_t)proto << 32 | (uint64_t)is_ip << 40 | (uint64_t)zone << 48;
}

_Static_assert(offsetof(struct flow_key, sport) == 32 && offsetof(struct flow_key, dport) == 34 &&
		       offsetof(struct flow_key, proto) == 36 && offsetof(struct flow_key, is_ip) == 37 &&
		       offsetof(struct flow_key, zone) == 38 && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "flow_ports_word is the little-endian word of sport..zone");

/* The hash of a key from its parts: the addresses, flow_ports_word, the VNI. */
static inline uint64_t flow_key_hash_parts(const struct ipaddr *src, const struct ipaddr *dst, uint64_t ports,
					   uint32_t vni)
{
	uint64_t w[6];
	memcpy(w, src, 16);
	memcpy(w + 2, dst, 16);
	w[4] = ports;
	w[5] = vni;
	return hash_bytes(w, sizeof(w), 0x5eed);
}

static inline uint64_t flow_key_hash(const struct flow_key *k)
{
	uint64_t ports;
	memcpy(&ports, (const uint8_t *)k + offsetof(struct flow_key, sport), sizeof(ports));
	return flow_key_hash_parts(&k->src, &k->dst, ports, k->vni);
}

/* flow_key_hash of k reversed with zone `zone`, without building that key. */
static inline uint64_t flow_key_hash_reverse(const struct flow_key *k, uint16_t zone)
{
	return flow_key_hash_parts(&k->dst, &k->src, flow_ports_word(k->dport, k->sport, k->proto, k->is_ip, zone),
				   k->vni);
}

/* Direction-independent hash: both directions of a flow give the same value
 * (used for path selection; workers are picked by steer.h's own hash). */
static inline uint64_t flow_key_hash_sym(const struct flow_key *k)
{
	int c = memcmp(&k->src, &k->dst, sizeof(k->src));
	const struct ipaddr *lo = c <= 0 ? &k->src : &k->dst, *hi = c <= 0 ? &k->dst : &k->src;
	uint64_t plo = c <= 0 ? k->sport : k->dport, phi = c <= 0 ? k->dport : k->sport;
	uint64_t w[5];
	memcpy(w, lo, 16);
	memcpy(w + 2, hi, 16);
	w[4] = plo | phi << 16 | (uint64_t)k->proto << 32 | (uint64_t)(k->vni & 0xffffff) << 40;
	return hash_bytes(w, sizeof(w), 0x51ab);
}

/* Hash of the 5-tuple alone (no zone or network): what a service node
 * sees of a flow. The service proxy keys its flow state on it, the port
 * proxy tags a packet with it (flow_tuple_tag) to notice a node's NAT. */
static inline uint64_t flow_tuple_hash(const struct flow_key *k)
{
	uint64_t w[5];
	memcpy(w, &k->src, 16);
	memcpy(w + 2, &k->dst, 16);
	w[4] = flow_ports_word(k->sport, k->dport, k->proto, 0, 0);
	return hash_bytes(w, sizeof(w), 0x5b7);
}

static inline uint16_t flow_tuple_tag(uint64_t tuple_hash)
{
	uint64_t h = tuple_hash;
	return (uint16_t)(h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48));
}

static inline bool flow_key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

#endif
