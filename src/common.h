/* common.h - small shared definitions: compiler hints, MAC and IP address
 * types, byte-order helpers. Owns nothing; every module may include it. */
#ifndef DETOUR_COMMON_H
#define DETOUR_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
/* for a small function on every packet's path that the compiler would call */
#define HOT_INLINE inline __attribute__((always_inline))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

struct mac {
	uint8_t b[6];
};

static inline bool mac_eq(const struct mac *a, const struct mac *b)
{
	return memcmp(a->b, b->b, 6) == 0;
}
static inline bool mac_is_multicast(const struct mac *m) { return m->b[0] & 1; }
static inline bool mac_is_zero(const struct mac *m)
{
	static const struct mac z;
	return mac_eq(m, &z);
}

/* An IPv4 or IPv6 address. IPv4 is stored as an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) so that one 16-byte compare serves both families. */
struct ipaddr {
	uint8_t b[16];
};

static inline bool ipaddr_is_v4(const struct ipaddr *a)
{
	static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(a->b, pfx, 12) == 0;
}
/* Written as two 8-byte words: the hashes that soon read the address in
 * words would otherwise wait on four narrower stores (a store-forwarding
 * stall per word). */
static inline void ipaddr_from_v4(struct ipaddr *a, const uint8_t v4[4])
{
	uint8_t hi[8] = {0, 0, 0xff, 0xff, v4[0], v4[1], v4[2], v4[3]};
	uint64_t lo = 0, w;
	memcpy(&w, hi, 8);
	memcpy(a->b, &lo, 8);
	memcpy(a->b + 8, &w, 8);
}
static inline bool ipaddr_eq(const struct ipaddr *a, const struct ipaddr *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

/* Unaligned big-endian loads and stores: packet fields are never accessed
 * through casted pointers (alignment and strict aliasing). */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }
static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16); p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* Writes a printf-style message into err[0..errlen) (nothing if err is NULL). */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Text forms; buffers of MAC_STRLEN / IPADDR_STRLEN bytes. Parsers return
 * false on malformed text and never write past the output. */
#define MAC_STRLEN 18
#define IPADDR_STRLEN 46
bool mac_parse(const char *s, struct mac *out);
void mac_format(const struct mac *m, char *buf);
bool ipaddr_parse(const char *s, struct ipaddr *out);
void ipaddr_format(const struct ipaddr *a, char *buf);
/* "a.b.c.d/len" or "x::y/len"; len is returned in IPv6 bits (v4 len + 96). */
bool prefix_parse(const char *s, struct ipaddr *addr, int *plen);

#endif
